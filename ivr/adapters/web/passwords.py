"""`python -m ivr.adapters.web.passwords`: print the hash of a dashboard password.

The hash goes into `[web] users` as `name:role:<hash>`; the password itself is
never written to the configuration.
"""

from __future__ import annotations

import getpass
import sys

from ivr.adapters.web.auth import hash_password


def main() -> int:
    password = getpass.getpass("Password: ")
    if len(password) < 8:
        sys.stderr.write("a dashboard password needs at least 8 characters\n")
        return 2
    if getpass.getpass("Again: ") != password:
        sys.stderr.write("the two passwords differ\n")
        return 2
    sys.stdout.write(hash_password(password) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
