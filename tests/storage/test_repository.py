"""CommittedWrites: merge rules, survey idempotence and answers, on both databases."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import HangupSide, SurveyStatus
from ivr.ports import SurveyRepository
from storage.repository import StoredSurvey
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import PBX, answer, at, call, epoch, leg, start


def test_the_repository_satisfies_the_port(repository: CommittedWrites) -> None:
    """Adapters receive it typed as ivr.ports.SurveyRepository."""
    port: SurveyRepository = repository

    assert port is repository


async def test_a_saved_call_reads_back_unchanged(repository: CommittedWrites) -> None:
    """Every field, the agent chain and the epoch times survive the round trip."""
    record = call(
        agents=(
            leg("Agent One", 1001, connected=30, talk_seconds=40, ended_by=HangupSide.TRANSFER),
            leg("Agent Two", 1002, queue=None, connected=75),
        ),
        talk_seconds=95,
        ended_by=HangupSide.CALLER,
        transferred=True,
        ended_at=epoch(110.5),
    )

    await repository.save_call(record)

    assert record == await repository.get_call(PBX, record.linkedid)


async def test_an_unknown_call_reads_as_none(repository: CommittedWrites) -> None:
    """Absence is None, not an exception."""
    assert None is await repository.get_call(PBX, "no-such-linkedid")


async def test_the_same_linkedid_on_two_pbxs_is_two_calls(repository: CommittedWrites) -> None:
    """Linkedids are only unique per Asterisk, so the key is (pbx, linkedid)."""
    first = call(caller_name="First")
    second = dataclasses.replace(call(caller_name="Second"), pbx="pbx-other")

    await repository.save_call(first)
    await repository.save_call(second)

    assert (first, second) == (
        await repository.get_call(first.pbx, first.linkedid),
        await repository.get_call(second.pbx, second.linkedid),
    )


async def test_none_never_overwrites_a_known_value(repository: CommittedWrites) -> None:
    """A later record that does not know a field leaves the stored value alone."""
    known = call(caller_name="Ada Caller", hold_seconds=12, ended_by=HangupSide.AGENT)
    await repository.save_call(known)

    await repository.save_call(
        call(
            caller_uniqueid=None,
            caller_channel=None,
            caller_number=None,
            caller_name=None,
            queue=None,
            hold_seconds=None,
            started_at=None,
            answered_at=None,
            agents=(),
        )
    )

    assert known == await repository.get_call(PBX, known.linkedid)


async def test_later_known_values_win_field_by_field(repository: CommittedWrites) -> None:
    """Newer knowledge replaces older, field by field, when it is known."""
    await repository.save_call(call(queue="sales", talk_seconds=None))

    await repository.save_call(
        call(caller_name=None, queue="support", talk_seconds=42, ended_at=epoch(200))
    )

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert ("Ada Caller", "support", 42, epoch(200)) == (
        stored.caller_name,
        stored.queue,
        stored.talk_seconds,
        stored.ended_at,
    )


async def test_abandoned_and_transferred_stay_true_once_seen(
    repository: CommittedWrites,
) -> None:
    """The domain's False also means "not known", so it cannot undo an observed fact."""
    await repository.save_call(call(abandoned=True, transferred=True))

    await repository.save_call(call(abandoned=False, transferred=False))

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert (True, True) == (stored.abandoned, stored.transferred)


async def test_partial_clears_once_a_complete_record_is_saved(
    repository: CommittedWrites,
) -> None:
    """A record built from the whole call's events completes a rebuilt one, and a
    later rebuilt record does not mark the complete row partial again."""
    await repository.save_call(call(partial=True))
    await repository.save_call(call(partial=False))
    await repository.save_call(call(partial=True))

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert False is stored.partial


@pytest.mark.parametrize(
    ("live_partial", "ended_partial", "expected"),
    [(False, True, True), (True, False, False), (False, False, False), (True, True, True)],
    ids=["AMI lost before the end", "rebuilt then seen to the end", "complete", "rebuilt"],
)
async def test_the_record_that_ends_the_call_decides_whether_it_is_partial(
    repository: CommittedWrites, live_partial: bool, ended_partial: bool, expected: bool
) -> None:
    """The row saved while the call was live (at survey start) cannot know that AMI
    was lost before the call ended; the first record carrying the end can."""
    await repository.save_call(call(partial=live_partial))
    await repository.save_call(call(partial=ended_partial, ended_at=epoch(200)))

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert expected is stored.partial


async def test_the_agent_chain_grows_and_never_shrinks(repository: CommittedWrites) -> None:
    """A shorter (older) record after a longer one keeps the whole chain, and its
    legs still merge their new knowledge into the leg they match."""
    one = leg("Agent One", 1001, connected=30)
    two = leg("Agent Two", 1002, connected=75)
    await repository.save_call(call(agents=(one, two)))

    one_done = dataclasses.replace(one, talk_seconds=40, ended_by=HangupSide.TRANSFER)
    await repository.save_call(call(agents=(one_done,)))

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert (one_done, two) == stored.agents


async def test_a_rebuilt_record_with_only_the_current_agent_is_appended(
    repository: CommittedWrites,
) -> None:
    """After a restart the tracker may know only the agent on the line now; that
    leg is matched by its channel and appended, not written over the first agent."""
    one = leg("Agent One", 1001, connected=30)
    await repository.save_call(call(agents=(one,)))

    three = leg("Agent Three", 1003, connected=90)
    await repository.save_call(call(agents=(three,), partial=True))

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert (one, three) == stored.agents


@pytest.mark.parametrize("channel_data_first", [True, False], ids=["AGI first", "AMI first"])
async def test_a_leg_read_from_channel_variables_merges_with_the_tracked_leg(
    repository: CommittedWrites, channel_data_first: bool
) -> None:
    """The AGI fallback knows only MEMBERNAME/MEMBERINTERFACE (no channel): it is the
    same agent as the leg AMI tracking reports, whichever is saved first."""
    tracked = leg("Agent One", 1001, connected=30, talk_seconds=40, ended_by=HangupSide.AGENT)
    from_channel = dataclasses.replace(
        tracked, channel="", connected_at=0.0, hold_seconds=None, ring_seconds=None,
        talk_seconds=None, ended_by=None,
    )  # fmt: skip
    records = [call(agents=(from_channel,), partial=True), call(agents=(tracked,))]
    for record in records if channel_data_first else reversed(records):
        await repository.save_call(record)

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert (tracked,) == stored.agents


async def test_the_credited_agent_is_the_last_of_the_stored_chain(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """calls.agent_name follows the chain, even when a stale record arrives last."""
    one = leg("Agent One", 1001, connected=30)
    two = leg("Agent Two", 1002, connected=75)
    await repository.save_call(call(agents=(one, two)))
    await repository.save_call(call(agents=(one,)))

    async with database_sessions() as session:
        row = (
            await session.execute(sa.text("SELECT agent_name, agent_interface FROM calls"))
        ).one()

    assert ("Agent Two", "PJSIP/1002") == tuple(row)


async def test_concurrent_saves_of_one_call_keep_every_leg(repository: CommittedWrites) -> None:
    """Many writers on one new linkedid: one row, no lost leg, no unique violation."""
    legs = [leg(f"Agent {number}", number, connected=number) for number in range(1, 9)]

    await asyncio.gather(*(repository.save_call(call(agents=(one,))) for one in legs))

    stored = await repository.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert sorted(one.channel for one in legs) == sorted(one.channel for one in stored.agents)


async def test_begin_survey_stores_the_call_and_opens_an_in_progress_survey(
    repository: CommittedWrites,
) -> None:
    """The AGI route's one write: the call as known now, plus the survey."""
    record = call()

    survey_id = await repository.begin_survey(record, start(record))

    assert survey_id is not None
    assert record == await repository.get_call(PBX, record.linkedid)
    expected = StoredSurvey(
        id=survey_id,
        status=SurveyStatus.IN_PROGRESS,
        answers=(),
        channel="PJSIP/customer-00000001",
        uniqueid="1741000000.1",
        language="en",
        started_at=at(120),
        finished_at=None,
    )
    assert expected == await repository.get_survey(PBX, record.linkedid)


async def test_a_second_begin_survey_for_the_same_call_gets_none(
    repository: CommittedWrites,
) -> None:
    """A replayed AGI request never opens a second survey, but its call data is kept."""
    record = call()
    first = await repository.begin_survey(record, start(record))

    second = await repository.begin_survey(call(talk_seconds=61), start(record, seconds=125))

    stored_call = await repository.get_call(PBX, record.linkedid)
    stored_survey = await repository.get_survey(PBX, record.linkedid)
    assert stored_call is not None
    assert stored_survey is not None
    assert (None, 61, first, at(120)) == (
        second,
        stored_call.talk_seconds,
        stored_survey.id,
        stored_survey.started_at,
    )


async def test_two_concurrent_begin_survey_give_one_id_and_one_none(
    repository: CommittedWrites,
) -> None:
    """The race is settled by the database: exactly one request wins."""
    record = call()

    results = await asyncio.gather(
        repository.begin_survey(record, start(record)),
        repository.begin_survey(record, start(record)),
    )

    assert 1 == sum(result is None for result in results)
    assert 1 == sum(isinstance(result, int) for result in results)


async def test_begin_survey_refuses_a_start_for_another_call(
    repository: CommittedWrites,
) -> None:
    """A survey is never attached to the wrong call by a wiring mistake."""
    with pytest.raises(ValueError, match="given the call"):
        await repository.begin_survey(call("A"), start(call("B")))


async def test_answers_are_upserted_by_question(repository: CommittedWrites) -> None:
    """Saving a question again updates it; each question is one row."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    await repository.save_answer(survey_id, answer("agent", None, attempts=1, seconds=130))
    await repository.save_answer(survey_id, answer("agent", 9, attempts=2, seconds=140))
    await repository.save_answer(survey_id, answer("company", 7, attempts=1, seconds=150))

    stored = await repository.get_survey(PBX, record.linkedid)
    assert stored is not None
    expected = (answer("agent", 9, attempts=2, seconds=140), answer("company", 7, seconds=150))
    assert expected == stored.answers


async def test_a_stored_score_is_never_replaced_by_none(repository: CommittedWrites) -> None:
    """A key the caller pressed is a fact; a later "gave up" keeps it."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    await repository.save_answer(survey_id, answer("agent", 4, attempts=1, seconds=130))
    await repository.save_answer(survey_id, answer("agent", None, attempts=3, seconds=150))

    stored = await repository.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert (answer("agent", 4, attempts=3, seconds=150),) == stored.answers


async def test_an_unanswered_question_is_stored_as_null_not_zero(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """NULL means asked and never answered; a 0 would count as a detractor."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    await repository.save_answer(survey_id, answer("agent", None, attempts=3))

    async with database_sessions() as session:
        values = (await session.execute(sa.text("SELECT value FROM answers"))).scalars().all()
    assert [None] == values


async def test_a_score_of_zero_is_stored_as_zero(repository: CommittedWrites) -> None:
    """0 is a real (detractor) score and must not be confused with unanswered."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    await repository.save_answer(survey_id, answer("agent", 0))

    stored = await repository.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert (answer("agent", 0),) == stored.answers


async def test_the_repository_cannot_store_a_score_of_eleven(
    repository: CommittedWrites,
) -> None:
    """The CHECK constraint stops an out-of-range score from any code path."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await repository.save_answer(survey_id, answer("agent", 11))


async def test_the_database_itself_rejects_a_score_of_eleven(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Even a hand-written INSERT cannot put 11 (or -1) into answers.value."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    insert = sa.text(
        "INSERT INTO answers (survey_id, question, value, attempts, answered_at) "
        "VALUES (:survey_id, 'agent', :value, 1, CURRENT_TIMESTAMP)"
    )
    rejected = []
    for value in (11, -1):
        async with database_sessions.begin() as session:
            try:
                async with session.begin_nested():
                    await session.execute(insert, {"survey_id": survey_id, "value": value})
            except sqlalchemy.exc.IntegrityError:
                rejected.append(value)

    assert [11, -1] == rejected


async def test_an_answer_for_an_unknown_survey_is_refused(repository: CommittedWrites) -> None:
    """Foreign keys are enforced on SQLite too (they are off by default there)."""
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await repository.save_answer(4242, answer("agent", 9))


async def test_finish_survey_records_status_and_time(repository: CommittedWrites) -> None:
    """Where the survey stopped, and when, as timezone-aware UTC."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    await repository.finish_survey(survey_id, SurveyStatus.PARTIAL, at(180))

    stored = await repository.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert (SurveyStatus.PARTIAL, at(180), UTC) == (
        stored.status,
        stored.finished_at,
        stored.finished_at.tzinfo if stored.finished_at else None,
    )


async def test_finishing_an_unknown_survey_raises(repository: CommittedWrites) -> None:
    """A survey id that does not exist is a bug worth hearing about."""
    with pytest.raises(LookupError, match="no survey with id 4242"):
        await repository.finish_survey(4242, SurveyStatus.COMPLETED, at(180))


async def test_naive_datetimes_are_refused(repository: CommittedWrites) -> None:
    """A time without a zone would be silently read as UTC; it is refused instead."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None

    with pytest.raises(sqlalchemy.exc.StatementError, match="naive datetime"):
        await repository.finish_survey(survey_id, SurveyStatus.COMPLETED, datetime(2025, 3, 3))


async def test_times_in_other_zones_are_stored_as_the_same_instant(
    repository: CommittedWrites,
) -> None:
    """An aware time in any zone comes back as the same instant in UTC."""
    record = call()
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None
    tehran = datetime.fromisoformat("2025-03-03T12:30:00+03:30")

    await repository.finish_survey(survey_id, SurveyStatus.COMPLETED, tehran)

    stored = await repository.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert "2025-03-03T09:00:00+00:00" == (
        stored.finished_at.isoformat() if stored.finished_at else None
    )


async def test_an_unknown_survey_reads_as_none(repository: CommittedWrites) -> None:
    """A call that was saved but never surveyed has no survey."""
    await repository.save_call(call())

    assert None is await repository.get_survey(PBX, "1741000000.1")
