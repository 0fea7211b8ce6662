"""The [web] and [alerts] configuration sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config.settings import WebUser, load
from ivr.config.values import ConfigError

TOKEN_A = "a" * 20
TOKEN_V = "v" * 20
HASH = "pbkdf2_sha256$1000$c2FsdA$aGFzaA"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr-survey.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_web_and_alerts_defaults_listen_on_localhost_and_send_nothing() -> None:
    config = load(None, environ={})

    assert ("127.0.0.1", 8080, 30, "", "http://127.0.0.1:8080") == (
        config.web.host,
        config.web.port,
        config.web.min_n,
        config.alerts.webhook_url,
        config.web.base_url(),
    )


def test_tokens_and_users_are_read_with_their_roles(tmp_path: Path) -> None:
    """Entries are separated by commas or spaces; the environment can hold them all."""
    text = f"""
[web]
users = "manager:admin:{HASH}, wall:viewer:{HASH}"
public_url = "https://nps.example/"
"""
    config = load(
        write(tmp_path, text),
        environ={"IVR_SURVEY_WEB_TOKENS": f"admin:{TOKEN_A} viewer:{TOKEN_V}"},
    )

    assert (
        {TOKEN_A: "admin", TOKEN_V: "viewer"},
        {
            "manager": WebUser("manager", "admin", HASH),
            "wall": WebUser("wall", "viewer", HASH),
        },
        "https://nps.example",
    ) == (config.web.token_roles(), config.web.web_users(), config.web.base_url())


def test_bad_web_and_alerts_keys_are_reported_one_per_line(tmp_path: Path) -> None:
    """A short token is reported without showing it; so is a user without a hash."""
    text = f"""
[web]
port = 70000
tokens = "admin:short superuser:{TOKEN_A}"
users = "bob:admin:plaintext"
metrics_auth = "maybe"
min_n = 0

[alerts]
webhook_url = "ftp://hooks.example"
backoff_initial = 10
backoff_max = 1
"""
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text), environ={})

    assert [
        "[web] port: 70000 is not a TCP port",
        "[web] tokens: entry 1 is not role:token (role admin or viewer, token of at least 16 "
        "characters; the entry is not shown)",
        "[web] tokens: entry 2 is not role:token (role admin or viewer, token of at least 16 "
        "characters; the entry is not shown)",
        "[web] users: the entry for 'bob' is not name:role:pbkdf2_sha256$... (make the hash "
        "with `python -m ivr.adapters.web.passwords`)",
        "[web] metrics_auth: 'maybe' is not one of token, none",
        "[web] min_n: 0 must be at least 1",
        "[alerts] webhook_url: must start with http:// or https://",
        "[alerts] secret: needed to sign the webhook (HMAC-SHA256) when webhook_url is set",
        "[alerts] backoff_initial/backoff_max: need 0 < backoff_initial <= backoff_max",
    ] == caught.value.problems


def test_web_and_alert_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    text = f"""
[web]
tokens = "admin:{TOKEN_A}"
users = "manager:admin:{HASH}"
session_secret = "cookie-signing-secret"

[alerts]
webhook_url = "https://hooks.example/T000/B000/XXXXSECRET"
secret = "hmac-secret-value"
"""
    shown = repr(load(write(tmp_path, text), environ={}))

    assert [] == [
        secret
        for secret in (TOKEN_A, HASH, "cookie-signing-secret", "XXXXSECRET", "hmac-secret-value")
        if secret in shown
    ]


def test_the_default_database_keeps_the_web_and_alerts_sections(tmp_path: Path) -> None:
    """`demo` fills in a SQLite URL; that must not reset [web] to its defaults."""
    config = load(
        write(tmp_path, "[web]\nport = 9090\n"),
        environ={},
        default_database_url="sqlite+aiosqlite:///./x.db",
    )

    assert (9090, "sqlite+aiosqlite:///./x.db") == (config.web.port, config.database.url)
