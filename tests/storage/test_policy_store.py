"""Policy storage: decisions on call rows, the history the policy reads, opt-outs,
the retention purge and migration 0004's backfill, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.core.policy import HistoryNeeds, PolicyHistory
from storage.database import alembic_config, upgrade
from storage.models import Call
from storage.policy_store import SqlPolicyHistory, SqlPolicyStore, purge
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import PBX, at, call, epoch, start

KEY = "caller-key-1"
# A cooldown and a cap far above any count here: every part of the history is read.
EVERYTHING = HistoryNeeds(day_start=at(0), cooldown=True, cap=1000)


def history_reader(sessions: async_sessionmaker[AsyncSession]) -> SqlPolicyHistory:
    """The history read on the sessions' own engine (the service gives it one of its own)."""
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return SqlPolicyHistory(engine)


async def decision_of(
    sessions: async_sessionmaker[AsyncSession], linkedid: str, pbx: str = PBX
) -> str | None:
    async with sessions() as session:
        return (
            await session.execute(
                sa.select(Call.policy_decision).where(Call.pbx == pbx, Call.linkedid == linkedid)
            )
        ).scalar_one()


async def test_a_decision_recorded_before_the_call_is_kept_when_the_call_is_saved(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The AGI request may come before AMI's record of the call: the row is created
    by the decision, and the later save_call fills it in without erasing the decision."""
    early = call("1.1", agents=(), queue=None, caller_key=KEY, talk_seconds=None)
    await repository.record_decision(early, "sampled_out")
    await repository.save_call(call("1.1", talk_seconds=40, ended_at=epoch(90)))

    stored = await repository.get_call(PBX, "1.1")
    assert stored is not None
    expected = ("sampled_out", KEY, "sales", 40, ["Agent One"])
    actual = (
        await decision_of(database_sessions, "1.1"),
        stored.caller_key,
        stored.queue,
        stored.talk_seconds,
        [leg.name for leg in stored.agents],
    )
    assert expected == actual


async def test_eligible_stays_while_other_decisions_are_replaced(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A survey that began keeps counting: a later refusal (an agent leg via F(),
    a replay) does not undo 'eligible'; any other decision is replaced by the later one."""
    await repository.record_decision(call("1.1"), "eligible")
    await repository.record_decision(call("1.1"), "agent_leg")
    await repository.record_decision(call("1.2"), "outside_hours")
    await repository.record_decision(call("1.2"), "cooldown")

    actual = [
        await decision_of(database_sessions, "1.1"),
        await decision_of(database_sessions, "1.2"),
    ]
    assert ["eligible", "cooldown"] == actual


async def test_history_finds_the_callers_last_survey_on_any_pbx(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Cooldowns match the caller key across PBXs; this call's own survey is left out
    (a replayed request must not cool itself down)."""
    older = call("1.1", pbx="pbx-paris", caller_key=KEY)
    newer = call("1.2", pbx="pbx-madrid", caller_key=KEY)
    someone_else = call("1.3", caller_key="another-caller")
    current = call("1.4", caller_key=KEY)
    await repository.begin_survey(older, dataclasses.replace(start(older, 100), pbx="pbx-paris"))
    await repository.begin_survey(newer, dataclasses.replace(start(newer, 200), pbx="pbx-madrid"))
    await repository.begin_survey(someone_else, start(someone_else, 300))
    await repository.begin_survey(current, start(current, 400))
    store = history_reader(database_sessions)

    history = await store.history(current, EVERYTHING)

    expected = PolicyHistory(
        last_surveyed_at=at(200), queue_surveys_today=3, this_call_surveyed=True
    )
    assert expected == history


async def test_history_counts_the_queues_surveys_since_the_day_began(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Only this queue's surveys started from `day_start` on, this call excluded."""
    for linkedid, queue, seconds in [
        ("2.1", "sales", -10),
        ("2.2", "sales", 10),
        ("2.3", "sales", 20),
        ("2.4", "support", 30),
        ("2.5", "sales", 40),
    ]:
        record = call(linkedid, queue=queue, caller_key=f"caller-{linkedid}")
        await repository.begin_survey(record, start(record, seconds))
    store = history_reader(database_sessions)

    history = await store.history(call("2.5", caller_key="caller-2.5"), EVERYTHING)

    assert PolicyHistory(queue_surveys_today=2, this_call_surveyed=True) == history


async def test_history_says_whether_this_very_call_has_a_survey(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Only the same (pbx, linkedid): another PBX's call with that Linkedid is another call."""
    surveyed = call("4.1", caller_key="caller-4.1")
    await repository.begin_survey(surveyed, start(surveyed, 10))
    store = history_reader(database_sessions)

    actual = [
        (await store.history(record, EVERYTHING)).this_call_surveyed
        for record in (surveyed, call("4.2"), call("4.1", pbx="pbx-other"))
    ]

    assert [True, False, False] == actual


async def test_history_knows_opted_out_callers_and_nothing_of_unknown_ones(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The opt-out list is matched by key; a caller without a number has no history."""
    await SqlPolicyStore(database_sessions).add_optout(KEY, None, at(0))
    store = history_reader(database_sessions)

    actual = [
        await store.history(call("3.1", caller_key=KEY), EVERYTHING),
        await store.history(call("3.2", caller_key=None, queue=None), EVERYTHING),
    ]
    assert [PolicyHistory(opted_out=True), PolicyHistory()] == actual


async def test_the_queues_surveys_are_counted_only_up_to_the_cap(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The policy only asks whether the cap is reached, so a busy queue's whole
    day is not counted for every call: the count stops at the cap."""
    for number in range(5):
        record = call(f"4.{number}", queue="sales", caller_key=f"caller-4.{number}")
        await repository.begin_survey(record, start(record, 10 + number))
    store = history_reader(database_sessions)
    needs = HistoryNeeds(day_start=at(0), cap=3)

    history = await store.history(call("4.9", caller_key="caller-4.9"), needs)

    assert PolicyHistory(queue_surveys_today=3) == history


async def test_without_cooldown_or_cap_only_the_opt_out_list_is_read(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The default policy uses neither the caller's last survey nor the queue's
    count: they are not read, and stay at the values no rule looks at."""
    earlier = call("5.1", caller_key=KEY)
    await repository.begin_survey(earlier, start(earlier, 100))
    await SqlPolicyStore(database_sessions).add_optout(KEY, None, at(0))
    store = history_reader(database_sessions)

    history = await store.history(call("5.2", caller_key=KEY), HistoryNeeds(day_start=at(0)))

    assert PolicyHistory(opted_out=True) == history


async def test_optouts_are_added_once_listed_and_removed(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Adding twice says so; removing an unknown caller says so; the list keeps order."""
    store = SqlPolicyStore(database_sessions)
    added = [
        await store.add_optout("key-b", "+4930111", at(10)),
        await store.add_optout("key-a", None, at(20)),
        await store.add_optout("key-b", "+4930111", at(30)),
    ]
    listed = [(entry.caller_key, entry.number, entry.added_at) for entry in await store.optouts()]
    removed = [await store.remove_optout("key-b"), await store.remove_optout("key-b")]
    left = [entry.caller_key for entry in await store.optouts()]

    assert [True, True, False] == added
    assert [("key-b", "+4930111", at(10)), ("key-a", None, at(20))] == listed
    assert ([True, False], ["key-a"]) == (removed, left)


async def test_purge_clears_old_numbers_and_names_but_keeps_the_caller_key(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Calls started before the cut-off lose number and name; the key (cooldowns,
    opt-outs) and newer calls stay; a second run has nothing left to do."""
    await repository.save_call(call("4.1", caller_key=KEY, started_at=epoch(0)))
    await repository.save_call(call("4.2", caller_key=KEY, started_at=epoch(86_400 * 40)))

    first = await purge(database_sessions, at(86_400 * 30))
    second = await purge(database_sessions, at(86_400 * 30))
    old = await repository.get_call(PBX, "4.1")
    new = await repository.get_call(PBX, "4.2")

    assert [("caller numbers and names", 1), ("recorded comments", 0)] == first
    assert [("caller numbers and names", 0), ("recorded comments", 0)] == second
    assert old is not None
    assert new is not None
    assert (None, None, KEY) == (old.caller_number, old.caller_name, old.caller_key)
    assert ("+4930123456", "Ada Caller") == (new.caller_number, new.caller_name)


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_migration_gives_older_calls_the_eligibility_the_reports_derived(
    database_url: str, database_engine: AsyncEngine
) -> None:
    """Calls stored before 0004 were never decided: answered, not abandoned and not
    ended by the caller becomes 'eligible'; the rest stays NULL."""
    async with database_engine.begin() as connection:
        await connection.run_sync(_upgrade_to, "0003")
        await connection.execute(
            sa.text(
                "INSERT INTO calls (pbx, linkedid, agent_name, abandoned, ended_by) VALUES "
                "('p', 'answered', 'Agent One', false, 'agent'), "
                "('p', 'unknown end', 'Agent One', false, NULL), "
                "('p', 'caller hung up', 'Agent One', false, 'caller'), "
                "('p', 'abandoned', NULL, true, NULL)"
            )
        )
    await upgrade(database_url)
    async with database_engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.text("SELECT linkedid, policy_decision FROM calls ORDER BY id")
            )
        ).all()

    assert [
        ("answered", "eligible"),
        ("unknown end", "eligible"),
        ("caller hung up", None),
        ("abandoned", None),
    ] == [tuple(row) for row in rows]
