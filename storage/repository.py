"""The SQL implementation of `ivr.ports.SurveyRepository`.

Every write is one short transaction that starts with an INSERT ... ON CONFLICT
on the call (or answer) row (the statements are in `storage.upserts`, shared
with the group-commit writer of `storage.writer`). That first statement takes the row's lock on
PostgreSQL and the write lock on SQLite, so two coroutines working on the same
call (the AMI consumer saving the call while the AGI route opens its survey)
are serialized by the database, not by code in this process, and the service
stays correct with several workers or several PBXs writing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import (
    AgentLeg,
    Answer,
    CallRecord,
    Comment,
    HangupSide,
    SurveyStart,
    SurveyStatus,
)
from storage import upserts
from storage.database import database_errors
from storage.models import Call, CallAgent, Survey, SurveyAnswer, SurveyComment


@dataclass(frozen=True, slots=True)
class StoredSurvey:
    """A survey as stored, for the end-to-end tests and the API to inspect."""

    id: int
    status: SurveyStatus
    answers: tuple[Answer, ...]
    channel: str
    uniqueid: str
    language: str
    started_at: datetime
    finished_at: datetime | None
    opted_in: bool | None = None
    initiated_by: str | None = None
    comment: Comment | None = None


def to_epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class SqlSurveyRepository:
    """`SurveyRepository` on SQLAlchemy async; returns domain objects only."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._single_writer = bind is not None and bind.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction; on SQLite, one at a time in arrival order.

        SQLite has a single writer anyway. Left to collide, concurrent writers
        wait in SQLite's busy handler, which sleeps in growing steps of up to
        100 ms: measured at 50 simultaneous surveys, callers waited up to 4 s
        for the first prompt (bench/agi_concurrency.py). Queued here, each
        write takes its few milliseconds in turn. PostgreSQL needs no queue.
        """
        if not self._single_writer:
            async with self._sessions.begin() as session:
                yield session
            return
        async with self._write_lock, self._sessions.begin() as session:
            yield session

    async def save_call(self, call: CallRecord) -> None:
        """Insert or merge the call; see `storage.upserts.merge_call` for the rules."""
        async with database_errors(f"save call {call.linkedid}"), self._writing() as session:
            await upserts.merge_call(session, call)

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        """Merge the call and open its survey in one transaction.

        Of two concurrent requests for one call exactly one gets an id; the
        other waits for the first to commit and then gets None.
        """
        upserts.check_start(call, start)
        async with (
            database_errors(f"begin the survey of call {call.linkedid}"),
            self._writing() as session,
        ):
            return await upserts.begin_survey(session, call, start)

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        """Upsert one question's outcome in its own transaction."""
        async with (
            database_errors(f"save the {answer.question!r} answer of survey {survey_id}"),
            self._writing() as session,
        ):
            await upserts.save_answers(session, [upserts.answer_row(survey_id, answer)])

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        """Record where the survey stopped; an unknown id is a bug and raises."""
        async with (
            database_errors(f"finish survey {survey_id}"),
            self._writing() as session,
        ):
            await upserts.finish_survey(session, survey_id, status, finished_at)

    async def record_decision(self, call: CallRecord, decision: str) -> None:
        """See `upserts.record_decision`."""
        async with (
            database_errors(f"record the policy decision of call {call.linkedid}"),
            self._writing() as session,
        ):
            await upserts.record_decision(session, call, decision)

    async def save_comment(self, survey_id: int, comment: Comment) -> None:
        """Store the survey's recorded comment; a second one for a survey is ignored."""
        async with (
            database_errors(f"save the comment of survey {survey_id}"),
            self._writing() as session,
        ):
            await upserts.save_comment(session, survey_id, comment)

    async def get_call(self, pbx: str, linkedid: str) -> CallRecord | None:
        """The stored call as a domain record, or None when it was never saved."""
        async with database_errors(f"read call {linkedid}"), self._sessions() as session:
            row = (
                await session.execute(
                    sa.select(Call).where(Call.pbx == pbx, Call.linkedid == linkedid)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            legs = (
                await session.execute(
                    sa.select(CallAgent)
                    .where(CallAgent.call_id == row.id)
                    .order_by(CallAgent.position)
                )
            ).scalars()
            return CallRecord(
                pbx=row.pbx,
                linkedid=row.linkedid,
                caller_uniqueid=row.caller_uniqueid,
                caller_channel=row.caller_channel,
                caller_number=row.caller_number,
                caller_name=row.caller_name,
                caller_key=row.caller_key,
                queue=row.queue,
                agents=tuple(_leg(leg) for leg in legs),
                hold_seconds=row.hold_seconds,
                talk_seconds=row.talk_seconds,
                ended_by=_side(row.ended_by),
                abandoned=row.abandoned,
                transferred=row.transferred,
                partial=row.partial,
                started_at=to_epoch(row.started_at),
                answered_at=to_epoch(row.answered_at),
                ended_at=to_epoch(row.ended_at),
            )

    async def calls_started_before(self, pbx: str, moment: datetime) -> int:
        """How many of this PBX's calls started before `moment` (the demo's history check)."""
        async with database_errors("count the stored calls"), self._sessions() as session:
            statement = (
                sa.select(sa.func.count())
                .select_from(Call)
                .where(Call.pbx == pbx, Call.started_at < moment)
            )
            return int((await session.execute(statement)).scalar_one())

    async def get_survey(self, pbx: str, linkedid: str) -> StoredSurvey | None:
        """The survey of a call with its answers in the order first saved."""
        async with (
            database_errors(f"read the survey of call {linkedid}"),
            self._sessions() as session,
        ):
            survey = (
                await session.execute(
                    sa.select(Survey)
                    .join(Call, Call.id == Survey.call_id)
                    .where(Call.pbx == pbx, Call.linkedid == linkedid)
                )
            ).scalar_one_or_none()
            if survey is None:
                return None
            answers = (
                await session.execute(
                    sa.select(SurveyAnswer)
                    .where(SurveyAnswer.survey_id == survey.id)
                    .order_by(SurveyAnswer.id)
                )
            ).scalars()
            comment = (
                await session.execute(
                    sa.select(SurveyComment).where(SurveyComment.survey_id == survey.id)
                )
            ).scalar_one_or_none()
            return StoredSurvey(
                id=survey.id,
                comment=None if comment is None else _comment(comment),
                status=SurveyStatus(survey.status),
                answers=tuple(
                    Answer(
                        question=answer.question,
                        value=answer.value,
                        attempts=answer.attempts,
                        answered_at=answer.answered_at,
                    )
                    for answer in answers
                ),
                channel=survey.channel,
                uniqueid=survey.uniqueid,
                language=survey.language,
                opted_in=survey.opted_in,
                initiated_by=survey.initiated_by,
                started_at=survey.started_at,
                finished_at=survey.finished_at,
            )


def _leg(row: CallAgent) -> AgentLeg:
    return AgentLeg(
        name=row.name,
        interface=row.interface,
        queue=row.queue,
        channel=row.channel,
        connected_at=row.connected_at.timestamp(),
        hold_seconds=row.hold_seconds,
        ring_seconds=row.ring_seconds,
        talk_seconds=row.talk_seconds,
        ended_by=_side(row.ended_by),
    )


def _comment(row: SurveyComment) -> Comment:
    return Comment(
        file=row.file or "",
        format=row.format or "",
        duration_seconds=row.duration_seconds,
        ended_by=row.ended_by,
        recorded_at=row.recorded_at,
    )


def _side(value: str | None) -> HangupSide | None:
    return None if value is None else HangupSide(value)
