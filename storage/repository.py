"""Reads of stored calls and surveys, for the demo, the end-to-end tests and the API.

What a caller's call and survey look like once stored, rebuilt as the domain
records the rest of the code works with. Writing is the group-commit writer's
job (`storage.writer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import AgentLeg, Answer, CallRecord, Comment, HangupSide, SurveyStatus
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
    """The stored calls and surveys as domain objects, read-only.

    Rows are written only by `storage.writer.GroupCommitWriter`: one write path
    means one set of merge rules, batching and outage handling to trust.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

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
