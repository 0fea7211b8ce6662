"""`ivr-survey web sessions revoke USER|--all`: sign out of every browser.

Stored in the database that every node reads (`storage.revocations`), so a
running service refuses the old cookies within `ivr.adapters.web.revocation_sync`'s
poll interval, and a restart does not bring them back. Signing in again
afterwards works: only cookies signed before the command are refused.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from ivr.adapters.web.auth import revocation_of
from ivr.adapters.web.revocation_sync import POLL_SECONDS
from ivr.config.settings import Config
from storage.database import open_migrated, session_factory
from storage.revocations import SqlRevocations

EXIT_OK = 0
EXIT_FAILURE = 1


def unknown_user_refusal(config: Config, user: str) -> str | None:
    """Shared with `ivr-survey web login-link`, so both commands refuse a
    mistyped name in the same words; None when `user` is configured."""
    users = config.web.web_users()
    if user in users:
        return None
    known = ", ".join(sorted(users)) or "none"
    return f"ivr-survey: no [web] user {user!r} (configured: {known})"


async def revoke_sessions(config: Config, user: str | None) -> int:
    """`user` None signs everyone out."""
    if user is not None and (refusal := unknown_user_refusal(config, user)) is not None:
        print(refusal, file=sys.stderr)
        return EXIT_FAILURE
    engine = await open_migrated(config.database.url)
    try:
        await SqlRevocations(session_factory(engine)).record(revocation_of(user, datetime.now(UTC)))
    finally:
        await engine.dispose()
    whom = "every user" if user is None else repr(user)
    print(
        f"signed {whom} out of every session signed until now; a running service refuses "
        f"those cookies within {POLL_SECONDS:g} s, on every node"
    )
    return EXIT_OK
