"""`ivr-survey optout add|remove|list` and `ivr-survey purge`.

The opt-out list is matched by caller key (ivr.core.privacy), so a number typed
here with spaces or dashes matches the caller however the PBX spells it, on
every PBX. In anonymous mode only the key is stored: the list then shows
keys, and a number is removed by typing it again.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.config.settings import Config
from ivr.core.privacy import normalise_number
from storage.database import open_migrated, session_factory
from storage.policy_store import SqlPolicyStore, purge

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Work = Callable[[async_sessionmaker[AsyncSession]], Awaitable[int]]


async def _on_database(config: Config, work: Work) -> int:
    """Run `work` on the migrated database; a missing or unmigrated one says what to run."""
    engine = await open_migrated(config.database.url)
    try:
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


async def optout(config: Config, action: str, number: str | None) -> int:
    privacy = config.privacy.privacy()
    if action == "list":
        return await _on_database(config, _list)
    key = privacy.caller_key(number)
    if number is None or key is None:
        print(f"ivr-survey: {number!r} is not a phone number (no digits)", file=sys.stderr)
        return EXIT_USAGE
    shown = normalise_number(number)

    async def add(sessions: async_sessionmaker[AsyncSession]) -> int:
        store = SqlPolicyStore(sessions)
        if await store.add_optout(key, privacy.stored_number(number), datetime.now(UTC)):
            print(f"{shown} added to the opt-out list: they will not be surveyed")
        else:
            print(f"{shown} was already on the opt-out list")
        return EXIT_OK

    async def remove(sessions: async_sessionmaker[AsyncSession]) -> int:
        if await SqlPolicyStore(sessions).remove_optout(key):
            print(f"{shown} removed from the opt-out list: they may be surveyed again")
            return EXIT_OK
        print(f"ivr-survey: {shown} is not on the opt-out list", file=sys.stderr)
        return EXIT_FAILURE

    return await _on_database(config, add if action == "add" else remove)


async def _list(sessions: async_sessionmaker[AsyncSession]) -> int:
    entries = await SqlPolicyStore(sessions).optouts()
    if not entries:
        print("the opt-out list is empty")
    for entry in entries:
        added = entry.added_at.strftime("%Y-%m-%d %H:%M UTC")
        who = entry.number or f"(number not stored) key {entry.caller_key}"
        print(f"{added}  {who}")
    return EXIT_OK


async def purge_command(config: Config, days: int | None) -> int:
    """Clear caller data older than `days` (default: [privacy] retention_days)."""
    keep_days = config.privacy.retention_days if days is None else days
    if keep_days <= 0:
        print(
            "nothing purged: [privacy] retention_days is 0 (keep forever); "
            "pass --days N to purge data older than N days"
        )
        return EXIT_OK
    before = datetime.now(UTC) - timedelta(days=keep_days)

    async def run(sessions: async_sessionmaker[AsyncSession]) -> int:
        for what, count in await purge(
            sessions, before, recordings_dir=config.survey.recordings_dir
        ):
            print(f"purged {what} of {count} calls started before {before:%Y-%m-%d %H:%M} UTC")
        return EXIT_OK

    return await _on_database(config, run)
