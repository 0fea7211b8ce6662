"""GroupCommitWriter: batching, order, failures, and replay of a spool, on both databases."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.domain import Comment, HangupSide, SurveyStatus
from ivr.ports import SurveyRepository
from storage.database import create_engine, session_factory
from storage.models import Call
from storage.repository import SqlSurveyRepository
from storage.spool import Spool
from storage.write_requests import BeginSurvey, FinishSurvey, SaveAnswer, Write, encode
from storage.writer import STARTS_COMPANIONS, GroupCommitWriter, is_unreachable
from tests.storage.builders import PBX, answer, at, call, epoch, leg, start


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def reader(engine: AsyncEngine) -> SqlSurveyRepository:
    """Reads what the writer stored."""
    return SqlSurveyRepository(session_factory(engine))


@pytest.fixture
async def writer(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[GroupCommitWriter]:
    writer = GroupCommitWriter(engine, Spool(tmp_path / "spool.jsonl"))
    await writer.start()
    try:
        yield writer
    finally:
        await writer.close()


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        return int((await connection.execute(query)).scalar_one())


def writes(*lines: Write) -> tuple[Write, ...]:
    """Spool lines of mixed kinds, typed as the writer's writes."""
    return lines


def test_the_writer_satisfies_the_port(writer: GroupCommitWriter) -> None:
    """The AGI route and the service receive it typed as ivr.ports.SurveyRepository."""
    port: SurveyRepository = writer

    assert port is writer


async def test_many_concurrent_surveys_are_written_in_few_transactions(
    writer: GroupCommitWriter, reader: SqlSurveyRepository
) -> None:
    """200 surveys begun at once, two answers and a status each: all stored, in
    far fewer transactions than writes."""

    async def survey(number: int) -> int | None:
        record = call(f"1741000000.{number}")
        survey_id = await writer.begin_survey(record, start(record))
        assert survey_id is not None
        await writer.save_answer(survey_id, answer("agent", number % 11))
        await writer.save_answer(survey_id, answer("company", (number + 3) % 11))
        await writer.finish_survey(survey_id, SurveyStatus.COMPLETED, at(200))
        return survey_id

    ids = await asyncio.gather(*(survey(number) for number in range(200)))
    await writer.flush()

    stored = [await reader.get_survey(PBX, f"1741000000.{number}") for number in range(200)]
    expected = [
        (survey_id, SurveyStatus.COMPLETED, (number % 11, (number + 3) % 11))
        for number, survey_id in enumerate(ids)
    ]
    actual = [
        (one.id, one.status, tuple(a.value for a in one.answers)) if one else None for one in stored
    ]
    assert expected == actual
    assert 800 == writer.written
    assert writer.batches < 100


async def test_writes_of_one_survey_keep_their_order(
    writer: GroupCommitWriter, reader: SqlSurveyRepository
) -> None:
    """Successive saves of one question land in the order given, with the merge
    rule intact: a later None never erases a score."""
    record = call()
    survey_id = await writer.begin_survey(record, start(record))
    assert survey_id is not None

    for value, attempts, seconds in [(4, 1, 130), (None, 3, 140), (7, 4, 150), (2, 5, 160)]:
        await writer.save_answer(survey_id, answer("agent", value, attempts, seconds))
    await writer.save_answer(survey_id, answer("company", None, 3, 170))
    await writer.finish_survey(survey_id, SurveyStatus.COMPLETED, at(180))
    await writer.flush()

    stored = await reader.get_survey(PBX, record.linkedid)
    assert stored is not None
    expected = (
        (answer("agent", 2, 5, 160), answer("company", None, 3, 170)),
        SurveyStatus.COMPLETED,
    )
    assert expected == (stored.answers, stored.status)


async def test_a_recorded_comment_is_written_once_with_its_survey(
    writer: GroupCommitWriter, reader: SqlSurveyRepository
) -> None:
    """The comment goes through the same queue as the answers; a replayed
    second one for the same survey is ignored."""
    record = call("1741000000.77")
    survey_id = await writer.begin_survey(record, start(record))
    assert survey_id is not None
    comment = Comment("pbx1-1741000000.77", "wav", 4.5, "dtmf", at(190))
    await writer.save_comment(survey_id, comment)
    await writer.save_comment(survey_id, Comment("other", "wav", 1.0, "timeout", at(195)))
    await writer.flush()

    stored = await reader.get_survey(PBX, "1741000000.77")
    assert stored is not None
    assert comment == stored.comment


async def test_policy_decisions_go_through_the_queue_and_eligible_stays(
    writer: GroupCommitWriter, engine: AsyncEngine
) -> None:
    """A decision creates the call row if needed; a later refusal (an agent's
    leg reaching the survey) does not undo a call already decided eligible."""
    await writer.record_decision(call("1741000000.81"), "cooldown")
    await writer.record_decision(call("1741000000.82"), "eligible")
    await writer.record_decision(call("1741000000.82"), "agent_leg")
    await writer.flush()

    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(Call.linkedid, Call.policy_decision)
                .where(Call.linkedid.in_(["1741000000.81", "1741000000.82"]))
                .order_by(Call.linkedid)
            )
        ).all()
    assert [("1741000000.81", "cooldown"), ("1741000000.82", "eligible")] == [
        tuple(row) for row in rows
    ]


async def test_a_survey_start_is_written_ahead_of_the_writes_queued_before_it(
    writer: GroupCommitWriter, engine: AsyncEngine
) -> None:
    """The caller waits for the survey row before the first question; 300 calls
    queued earlier must not stand in front of it: its batch carries at most
    STARTS_COMPANIONS of them."""
    for number in range(300):
        await writer.save_call(call(f"1741000001.{number}"))
    record = call("1741000002.1")
    survey_id = await writer.begin_survey(record, start(record))
    stored_when_started = await count(engine, "calls")
    await writer.flush()

    assert (True, STARTS_COMPANIONS + 1, 301) == (
        survey_id is not None,
        stored_when_started,
        await count(engine, "calls"),
    )


async def test_a_repeated_begin_gets_none_even_within_one_batch(
    writer: GroupCommitWriter,
) -> None:
    """One survey per (pbx, linkedid): of two requests queued together, one wins."""
    record = call()

    results = await asyncio.gather(
        writer.begin_survey(record, start(record)),
        writer.begin_survey(record, start(record, seconds=121)),
    )

    assert 1 == sum(result is None for result in results)


async def test_calls_merge_as_the_repository_does(
    writer: GroupCommitWriter, reader: SqlSurveyRepository
) -> None:
    """Known values are never replaced by None and the agent chain only grows,
    even when every save of the call is in one batch."""
    one = leg("Agent One", 1001, connected=30)
    two = leg("Agent Two", 1002, connected=75)
    one_done = dataclasses.replace(one, talk_seconds=40, ended_by=HangupSide.TRANSFER)

    await writer.save_call(call(agents=(one, two), caller_name="Ada Caller"))
    await writer.save_call(call(agents=(one_done,), caller_name=None, talk_seconds=95))
    await writer.flush()

    stored = await reader.get_call(PBX, "1741000000.1")
    assert stored is not None
    assert ((one_done, two), "Ada Caller", 95) == (
        stored.agents,
        stored.caller_name,
        stored.talk_seconds,
    )


async def test_a_bad_answer_loses_only_itself_and_names_its_linkedid(
    writer: GroupCommitWriter,
    reader: SqlSurveyRepository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A score of 11 (refused by the CHECK) in the middle of a batch: the rest of
    the batch is stored, and the error names the call."""
    records = [call(f"1741000000.{number}") for number in range(3)]
    ids = [await writer.begin_survey(record, start(record)) for record in records]
    assert None not in ids

    with caplog.at_level(logging.ERROR, logger="storage.writer"):
        for survey_id, value in zip(ids, [9, 11, 7], strict=True):
            assert survey_id is not None
            await writer.save_answer(survey_id, answer("agent", value))
        await writer.flush()

    stored = [await reader.get_survey(PBX, record.linkedid) for record in records]
    assert [(9,), (), (7,)] == [tuple(a.value for a in s.answers) if s else None for s in stored]
    assert 1 == writer.failed
    assert any("Linkedid=1741000000.1:" in record.getMessage() for record in caplog.records)


async def test_a_refused_survey_start_fails_its_caller_only(writer: GroupCommitWriter) -> None:
    """A naive start time is refused for that caller; the others get their ids."""
    good, bad = call("1741000000.1"), call("1741000000.2")
    naive = dataclasses.replace(start(bad), started_at=datetime(2025, 3, 3, 9, 0))

    results = await asyncio.gather(
        writer.begin_survey(good, start(good)),
        writer.begin_survey(bad, naive),
        return_exceptions=True,
    )

    assert isinstance(results[0], int)
    assert isinstance(results[1], Exception)
    assert "naive datetime" in str(results[1])


async def test_a_spool_left_by_a_crash_is_replayed_at_start_and_again_without_duplicates(
    engine: AsyncEngine, reader: SqlSurveyRepository, tmp_path: Path
) -> None:
    """A survey taken while the database was down is written back at start-up;
    a crash between that write-back and the spool's removal replays it again,
    which stores nothing twice."""
    record = call(ended_at=epoch(300))
    provisional = -42
    spool_path = tmp_path / "spool.jsonl"
    lines: list[Write] = [
        BeginSurvey(record, start(record), provisional=provisional),
        SaveAnswer(provisional, answer("agent", 9), record.linkedid),
        SaveAnswer(provisional, answer("company", 3, seconds=140), record.linkedid),
        FinishSurvey(provisional, SurveyStatus.COMPLETED, at(150), record.linkedid),
    ]
    Spool(spool_path).append(encode(line) for line in lines)
    kept = tmp_path / "copy.jsonl"
    shutil.copy(spool_path, kept)

    first = GroupCommitWriter(engine, Spool(spool_path))
    await first.start()
    await first.close()
    replayed_once = await reader.get_survey(PBX, record.linkedid)
    shutil.copy(kept, spool_path)  # the crash: replayed, but never removed
    second = GroupCommitWriter(engine, Spool(spool_path))
    await second.start()
    await second.close()

    stored = await reader.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert replayed_once == stored
    assert ((9, 3), SurveyStatus.COMPLETED) == (
        tuple(a.value for a in stored.answers),
        stored.status,
    )
    assert (1, 2, False) == (
        await count(engine, "surveys"),
        await count(engine, "answers"),
        spool_path.exists(),
    )


async def test_a_spooled_repeat_of_a_stored_survey_is_not_counted(
    engine: AsyncEngine, reader: SqlSurveyRepository, tmp_path: Path
) -> None:
    """A replayed AGI request taken while the database was down: at write-back
    the call already has its survey, so the repeat's answers are dropped. The
    stored survey, never finished by the writer that began it, is marked
    interrupted when the next one starts."""
    record = call()
    live = GroupCommitWriter(engine, Spool(tmp_path / "live.jsonl"))
    await live.start()
    survey_id = await live.begin_survey(record, start(record))
    assert survey_id is not None
    await live.save_answer(survey_id, answer("agent", 9))
    await live.close()
    spool_path = tmp_path / "spool.jsonl"
    Spool(spool_path).append(
        encode(line)
        for line in writes(
            BeginSurvey(record, start(record, seconds=500), provisional=-7),
            SaveAnswer(-7, answer("agent", 1, seconds=510), record.linkedid),
            FinishSurvey(-7, SurveyStatus.PARTIAL, at(520), record.linkedid),
        )
    )

    replaying = GroupCommitWriter(engine, Spool(spool_path))
    await replaying.start()
    await replaying.close()

    stored = await reader.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert ((9,), SurveyStatus.INTERRUPTED, 1) == (
        tuple(a.value for a in stored.answers),
        stored.status,
        await count(engine, "surveys"),
    )


def _wrapped(error_type: type[sqlalchemy.exc.DBAPIError], reason: Exception) -> Exception:
    return error_type("INSERT ...", {}, reason)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (TimeoutError(), True),
        (_wrapped(sqlalchemy.exc.OperationalError, OSError("server closed")), True),
        (_wrapped(sqlalchemy.exc.InterfaceError, Exception("connection is closed")), True),
        (_wrapped(sqlalchemy.exc.IntegrityError, Exception("violates check")), False),
        (_wrapped(sqlalchemy.exc.DataError, Exception("value too long")), False),
        (sqlalchemy.exc.StatementError("naive datetime", "UPDATE", {}, ValueError()), False),
        (LookupError("no survey with id 4242"), False),
    ],
    ids=[
        "refused",
        "reset",
        "timeout",
        "operational",
        "interface",
        "constraint",
        "data",
        "bad value",
        "unknown survey",
    ],
)
def test_outages_are_told_from_refused_writes(error: Exception, expected: bool) -> None:
    """Only an unusable database sends writes to the spool; a refused write is a bug."""
    assert expected == is_unreachable(error)


async def test_answers_spooled_for_one_question_are_replayed_in_order(
    engine: AsyncEngine, reader: SqlSurveyRepository, tmp_path: Path
) -> None:
    """The spool is written back in the order written: the last save of a
    question wins, and a later None keeps the score given before it."""
    record = call()
    spool_path = tmp_path / "spool.jsonl"
    Spool(spool_path).append(
        encode(line)
        for line in writes(
            BeginSurvey(record, start(record), provisional=-3),
            SaveAnswer(-3, answer("agent", 4, 1, 130), record.linkedid),
            SaveAnswer(-3, answer("agent", 6, 2, 140), record.linkedid),
            SaveAnswer(-3, answer("agent", None, 3, 150), record.linkedid),
        )
    )

    replaying = GroupCommitWriter(engine, Spool(spool_path))
    await replaying.start()
    await replaying.close()

    stored = await reader.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert (answer("agent", 6, 3, 150),) == stored.answers


async def test_a_spooled_write_the_database_refuses_is_kept_aside_and_the_rest_replayed(
    engine: AsyncEngine,
    reader: SqlSurveyRepository,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A score of 11 in the spool would fail every replay: it goes to `.rejected`
    with its Linkedid in the log, and the survey's other writes are stored."""
    record = call()
    spool = Spool(tmp_path / "spool.jsonl")
    bad = SaveAnswer(-5, answer("company", 11), record.linkedid)
    spool.append(
        encode(line)
        for line in writes(
            BeginSurvey(record, start(record), provisional=-5),
            SaveAnswer(-5, answer("agent", 9), record.linkedid),
            bad,
            FinishSurvey(-5, SurveyStatus.COMPLETED, at(200), record.linkedid),
        )
    )
    spool.close()

    replaying = GroupCommitWriter(engine, Spool(spool.path))
    with caplog.at_level(logging.ERROR, logger="storage.writer"):
        await replaying.start()
    await replaying.close()

    stored = await reader.get_survey(PBX, record.linkedid)
    assert stored is not None
    assert ((9,), SurveyStatus.COMPLETED) == (tuple(a.value for a in stored.answers), stored.status)
    rejected = spool.rejected_path.read_text().splitlines()
    assert [encode(bad)] == [json.loads(line) for line in rejected]
    assert any(f"Linkedid={record.linkedid}:" in message for message in caplog.messages)


async def test_a_batch_of_whole_calls_is_written_in_a_few_statements(
    writer: GroupCommitWriter, engine: AsyncEngine, reader: SqlSurveyRepository
) -> None:
    """50 calls' policy decisions and final records queued together: 100 writes,
    some 300 statements one write at a time. Each kind runs once for a group of
    writes on different calls (the second save of a call starts a second group),
    and every call is stored as the single-write rules say."""
    executed: list[str] = []

    def count(*arguments: object) -> None:
        executed.append(str(arguments[2]))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    ended = dataclasses.replace(leg("Agent One", 1001), talk_seconds=60, ended_by=HangupSide.AGENT)
    for number in range(50):
        await writer.record_decision(call(f"1741000003.{number}"), "eligible")
    for number in range(50):
        await writer.save_call(call(f"1741000003.{number}", agents=(ended,), talk_seconds=60))
    await writer.flush()
    sa.event.remove(engine.sync_engine, "before_cursor_execute", count)

    stored = [await reader.get_call(PBX, f"1741000003.{number}") for number in range(50)]
    assert [(60, (ended,))] * 50 == [(s.talk_seconds, s.agents) if s else None for s in stored]
    assert len(executed) <= 6, executed


async def test_a_status_for_an_unknown_survey_is_refused_alone(
    writer: GroupCommitWriter, reader: SqlSurveyRepository, caplog: pytest.LogCaptureFixture
) -> None:
    """A status naming no stored survey is a bug: it is logged, and the answer
    and status written in the same batch are stored."""
    record = call("1741000004.1")
    survey_id = await writer.begin_survey(record, start(record))
    assert survey_id is not None

    with caplog.at_level(logging.ERROR, logger="storage.writer"):
        await writer.finish_survey(987654, SurveyStatus.COMPLETED, at(200))
        await writer.save_answer(survey_id, answer("agent", 8))
        await writer.finish_survey(survey_id, SurveyStatus.COMPLETED, at(200))
        await writer.flush()

    stored = await reader.get_survey(PBX, "1741000004.1")
    assert stored is not None
    assert ((8,), SurveyStatus.COMPLETED, 1) == (
        tuple(a.value for a in stored.answers),
        stored.status,
        writer.failed,
    )
    assert any("no survey with id 987654" in record.getMessage() for record in caplog.records)
