"""`ivr-survey optout` and `ivr-survey purge` as a user runs them: messages and exit codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.core.domain import CallRecord
from storage.database import create_engine, upgrade
from tests.helpers.cli import ivr_survey
from tests.helpers.writes import committed_writes
from tests.storage.builders import epoch

ANONYMOUS = {"IVR_SURVEY_PRIVACY_ANONYMIZE": "yes", "IVR_SURVEY_PRIVACY_HASH_KEY": "k" * 32}


@pytest.fixture
def database(tmp_path: Path) -> dict[str, str]:
    """The environment of a migrated SQLite database in tmp_path."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.db'}"
    asyncio.run(upgrade(url))
    return {"IVR_SURVEY_DATABASE_URL": url}


def lines(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, list[str], list[str]]:
    result = ivr_survey(*args, cwd=cwd, env=env)
    return result.returncode, result.stdout.splitlines(), result.stderr.splitlines()


def test_optout_add_list_remove(tmp_path: Path, database: dict[str, str]) -> None:
    """A number is added once (however it is spelled), listed, and removed once."""
    outcomes = [
        lines("optout", "add", "+1 555-000 1111", cwd=tmp_path, env=database),
        lines("optout", "add", "+15550001111", cwd=tmp_path, env=database),
        lines("optout", "list", cwd=tmp_path, env=database),
        lines("optout", "remove", "15550001111", cwd=tmp_path, env=database),
        lines("optout", "remove", "15550001111", cwd=tmp_path, env=database),
        lines("optout", "list", cwd=tmp_path, env=database),
    ]
    listed = outcomes[2][1]
    assert (0, ["+15550001111 added to the opt-out list: they will not be surveyed"], []) == (
        outcomes[0]
    )
    assert (0, ["+15550001111 was already on the opt-out list"]) == outcomes[1][:2]
    assert (0, 1, True) == (outcomes[2][0], len(listed), listed[0].endswith("  +15550001111"))
    assert (0, ["15550001111 removed from the opt-out list: they may be surveyed again"]) == (
        outcomes[3][:2]
    )
    assert (1, [], ["ivr-survey: 15550001111 is not on the opt-out list"]) == outcomes[4]
    assert (0, ["the opt-out list is empty"]) == outcomes[5][:2]


def test_anonymous_optout_keeps_only_the_key(tmp_path: Path, database: dict[str, str]) -> None:
    """In anonymous mode the list shows the key; the number is stored nowhere."""
    env = {**database, **ANONYMOUS}
    added = lines("optout", "add", "+15550001111", cwd=tmp_path, env=env)
    code, listed, _ = lines("optout", "list", cwd=tmp_path, env=env)
    assert (0, 0, 1) == (added[0], code, len(listed))
    assert "(number not stored) key " in listed[0]
    assert "5550001111" not in listed[0]
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("ivr.db*"))
    assert b"5550001111" not in stored


def test_optout_refuses_a_number_without_digits(tmp_path: Path, database: dict[str, str]) -> None:
    """Exit code 2 and the reason; nothing is stored."""
    assert (2, [], ["ivr-survey: 'anonymous' is not a phone number (no digits)"]) == lines(
        "optout", "add", "anonymous", cwd=tmp_path, env=database
    )


def test_optout_on_an_unmigrated_database_says_what_to_run(tmp_path: Path) -> None:
    """Exit code 1 and the upgrade command, no traceback."""
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"}
    code, _, errors = lines("optout", "list", cwd=tmp_path, env=env)
    assert (1, True) == (code, "ivr-survey db upgrade" in errors[-1])
    assert not any("Traceback" in line for line in errors)


async def _store_calls(url: str) -> None:
    engine = create_engine(url)
    try:
        async with committed_writes(engine) as repository:
            for linkedid, started in (("1.1", epoch(0)), ("1.2", None)):
                await repository.save_call(
                    CallRecord(
                        pbx="p",
                        linkedid=linkedid,
                        caller_number="+15550001111",
                        caller_name="Ada",
                        caller_key="15550001111",
                        started_at=started,
                    )
                )
    finally:
        await engine.dispose()


def test_purge_clears_numbers_older_than_the_days_given(
    tmp_path: Path, database: dict[str, str]
) -> None:
    """--days N clears the 2025 call; a call stored just now stays; the config's 0 purges
    nothing and says how to purge anyway."""
    asyncio.run(_store_calls(database["IVR_SURVEY_DATABASE_URL"]))
    by_config = lines("purge", cwd=tmp_path, env=database)
    by_days = lines("purge", "--days", "30", cwd=tmp_path, env=database)
    bad_days = lines("purge", "--days", "0", cwd=tmp_path, env=database)
    assert 0 == by_config[0]
    assert by_config[1][0].startswith("nothing purged: [privacy] retention_days is 0")
    assert (0, 2) == (by_days[0], len(by_days[1]))
    assert by_days[1][0].startswith("purged caller numbers and names of 1 calls started before")
    assert by_days[1][1].startswith("purged recorded comments of 0 calls started before")
    assert (2, True) == (bad_days[0], "is not a whole number of days >= 1" in bad_days[2][-1])
