#!/bin/sh
# Gives the shipped manager account the secret of this installation, then runs
# the command (Asterisk). The secret comes from IVR_SURVEY_AMI_SECRET, the same
# variable compose hands the service, so the two cannot drift apart and no
# example password ever guards a running AMI port.
set -eu

template="${IVR_SURVEY_MANAGER_TEMPLATE:-/opt/ivr-survey/manager-ivr-survey.conf}"
target="${IVR_SURVEY_MANAGER_CONF:-/etc/asterisk/manager-ivr-survey.conf}"
secret="${IVR_SURVEY_AMI_SECRET:-}"

case "$secret" in
  "" | change-me)
    echo "entrypoint: set IVR_SURVEY_AMI_SECRET in docker/.env to a secret of your own (docker/README.md)" >&2
    exit 64
    ;;
esac
# A .conf value ends at ';' and at the line's end: allow only what survives.
if printf '%s' "$secret" | LC_ALL=C grep -q '[^A-Za-z0-9._~+/=-]'; then
  echo "entrypoint: IVR_SURVEY_AMI_SECRET may hold only letters, digits and . _ ~ + / = -" >&2
  exit 64
fi

# Only the [ivr-survey] account's secret changes; the template's comments stay.
awk '
  /^\[/ { account = ($0 ~ /^\[ivr-survey\]/) }
  account && /^secret[ \t]*=/ { print "secret = " ENVIRON["IVR_SURVEY_AMI_SECRET"]; next }
  { print }
' "$template" > "$target.tmp"
# Asterisk runs as its own user; nobody else in the container needs the secret.
if chgrp asterisk "$target.tmp" 2>/dev/null; then chmod 640 "$target.tmp"; fi
grep -q "^secret = $secret\$" "$target.tmp" || {
  echo "entrypoint: $template has no 'secret =' line in [ivr-survey]" >&2
  exit 65
}
mv "$target.tmp" "$target"
exec "$@"
