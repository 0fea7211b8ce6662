"""The SQL implementation of `ivr.ports.SurveyRepository`.

Every write is one short transaction that starts with an INSERT ... ON CONFLICT
on the call (or answer) row. That first statement takes the row's lock on
PostgreSQL and the write lock on SQLite, so two coroutines working on the same
call (the AMI consumer saving the call while the AGI route opens its survey)
are serialized by the database, not by code in this process, and the service
stays correct with several workers or several PBXs writing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.domain import (
    AgentLeg,
    Answer,
    CallRecord,
    Comment,
    HangupSide,
    SurveyStart,
    SurveyStatus,
)
from storage.database import database_errors
from storage.models import Base, Call, CallAgent, Survey, SurveyAnswer, SurveyComment


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


def to_datetime(epoch: float | None) -> datetime | None:
    """The domain keeps call times as epoch seconds (the clock AMI events were
    received on); the schema keeps them as UTC timestamps that SQL can filter."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def to_epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _table(model: type[Base]) -> sa.Table:
    """The model's Table: Core statements are used for ON CONFLICT and RETURNING."""
    return cast(sa.Table, model.__table__)


def _insert(session: AsyncSession, table: sa.Table) -> Any:
    """The dialect's INSERT, the one that knows ON CONFLICT.

    Both dialects spell it the same way (`on_conflict_do_update(index_elements,
    set_)`, `excluded`), so the statements below are written once.
    """
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _keep_known(table: sa.Table, excluded: Any, columns: Sequence[str]) -> dict[str, Any]:
    """SET clauses where the incoming value wins unless it is NULL (unknown)."""
    return {name: sa.func.coalesce(excluded[name], table.c[name]) for name in columns}


_CALL_MERGED_COLUMNS = (
    "caller_uniqueid",
    "caller_channel",
    "caller_number",
    "caller_name",
    "queue",
    "hold_seconds",
    "talk_seconds",
    "ended_by",
    "started_at",
    "answered_at",
    "ended_at",
)
_LEG_MERGED_COLUMNS = ("queue", "hold_seconds", "ring_seconds", "talk_seconds", "ended_by")
_LEG_REPLACED_COLUMNS = ("name", "interface", "channel", "connected_at")


def _leg_key(channel: str, interface: str, connected_at: datetime) -> tuple[str, ...]:
    """What identifies one agent leg across saves, whatever its position in a record.

    The channel name (`PJSIP/1001-0000002a`) is unique per leg. Matching on it,
    rather than on the index in the record, keeps a record rebuilt after a
    restart (which may hold only the current agent) from overwriting the first
    agent of the chain: it is appended or merged into its own leg instead.
    """
    if channel:
        return ("channel", channel)
    return ("interface", interface, connected_at.isoformat())


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
        """Insert or merge the call; see `_merge_call` for the rules."""
        async with database_errors(f"save call {call.linkedid}"), self._writing() as session:
            await _merge_call(session, call)

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        """Merge the call and open its survey in one transaction.

        The survey INSERT does nothing on a conflict with the UNIQUE call_id, so
        of two concurrent requests for one call exactly one gets an id; the other
        waits for the first to commit and then gets None.
        """
        if (start.pbx, start.linkedid) != (call.pbx, call.linkedid):
            raise ValueError(
                f"survey start for {start.pbx}/{start.linkedid} "
                f"given the call {call.pbx}/{call.linkedid}"
            )
        surveys = _table(Survey)
        async with (
            database_errors(f"begin the survey of call {call.linkedid}"),
            self._writing() as session,
        ):
            call_id = await _merge_call(session, call)
            statement = (
                _insert(session, surveys)
                .values(
                    call_id=call_id,
                    channel=start.channel,
                    uniqueid=start.uniqueid,
                    language=start.language,
                    status=SurveyStatus.IN_PROGRESS.value,
                    started_at=start.started_at,
                    opted_in=start.opted_in,
                    initiated_by=start.initiated_by,
                )
                .on_conflict_do_nothing(index_elements=[surveys.c.call_id])
                .returning(surveys.c.id)
            )
            survey_id: int | None = (await session.execute(statement)).scalar_one_or_none()
            return survey_id

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        """Upsert one question's outcome in its own transaction.

        A score already stored is never replaced by None: a keypress the caller
        made is a fact, and a later "gave up on this question" cannot undo it.
        """
        answers = _table(SurveyAnswer)
        async with (
            database_errors(f"save the {answer.question!r} answer of survey {survey_id}"),
            self._writing() as session,
        ):
            statement = _insert(session, answers).values(
                survey_id=survey_id,
                question=answer.question,
                value=answer.value,
                attempts=answer.attempts,
                answered_at=answer.answered_at,
            )
            statement = statement.on_conflict_do_update(
                index_elements=[answers.c.survey_id, answers.c.question],
                set_={
                    "value": sa.func.coalesce(statement.excluded.value, answers.c.value),
                    "attempts": statement.excluded.attempts,
                    "answered_at": statement.excluded.answered_at,
                },
            )
            await session.execute(statement)

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        """Record where the survey stopped; an unknown id is a bug and raises."""
        async with (
            database_errors(f"finish survey {survey_id}"),
            self._writing() as session,
        ):
            result = await session.execute(
                sa.update(Survey)
                .where(Survey.id == survey_id)
                .values(status=SurveyStatus(status).value, finished_at=finished_at)
            )
            if cast(sa.CursorResult[Any], result).rowcount == 0:
                raise LookupError(f"no survey with id {survey_id}")

    async def save_comment(self, survey_id: int, comment: Comment) -> None:
        """Store the survey's recorded comment; a second one for a survey is ignored."""
        comments = _table(SurveyComment)
        async with (
            database_errors(f"save the comment of survey {survey_id}"),
            self._writing() as session,
        ):
            statement = _insert(session, comments).values(
                survey_id=survey_id,
                file=comment.file,
                format=comment.format,
                duration_seconds=comment.duration_seconds,
                ended_by=comment.ended_by,
                recorded_at=comment.recorded_at,
            )
            await session.execute(
                statement.on_conflict_do_nothing(index_elements=[comments.c.survey_id])
            )

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


async def _merge_call(session: AsyncSession, call: CallRecord) -> int:
    """Upsert the call and its agent chain; return the call's id.

    Field by field the later record wins, except that None (not known) never
    replaces a known value. The domain's booleans default to False, which cannot
    tell "no" from "not known", so `abandoned` and `transferred` stay True once
    seen, and `partial` stays True only while every record saved was partial:
    one record built from the whole call's events makes the row complete.
    """
    calls = _table(Call)
    now = datetime.now(UTC)
    statement = _insert(session, calls).values(
        pbx=call.pbx,
        linkedid=call.linkedid,
        caller_uniqueid=call.caller_uniqueid,
        caller_channel=call.caller_channel,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        queue=call.queue,
        hold_seconds=call.hold_seconds,
        talk_seconds=call.talk_seconds,
        ended_by=None if call.ended_by is None else call.ended_by.value,
        abandoned=call.abandoned,
        transferred=call.transferred,
        partial=call.partial,
        started_at=to_datetime(call.started_at),
        answered_at=to_datetime(call.answered_at),
        ended_at=to_datetime(call.ended_at),
        created_at=now,
        updated_at=now,
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[calls.c.pbx, calls.c.linkedid],
        set_={
            **_keep_known(calls, excluded, _CALL_MERGED_COLUMNS),
            "abandoned": sa.or_(calls.c.abandoned, excluded.abandoned),
            "transferred": sa.or_(calls.c.transferred, excluded.transferred),
            "partial": sa.and_(calls.c.partial, excluded.partial),
            "updated_at": excluded.updated_at,
        },
    ).returning(calls.c.id)
    call_id: int = (await session.execute(statement)).scalar_one()
    if call.agents:
        await _merge_legs(session, call_id, call.agents)
    return call_id


async def _merge_legs(session: AsyncSession, call_id: int, legs: Sequence[AgentLeg]) -> None:
    """Merge each leg into the stored leg it matches, or append it to the chain.

    Runs after the call's upsert in the same transaction, so the call row is
    locked and the positions read here cannot be taken by a concurrent save.
    """
    agents = _table(CallAgent)
    stored = (
        await session.execute(
            sa.select(
                agents.c.position, agents.c.channel, agents.c.interface, agents.c.connected_at
            )
            .where(agents.c.call_id == call_id)
            .order_by(agents.c.position)
        )
    ).all()
    positions: dict[tuple[str, ...], int] = {
        _leg_key(row.channel, row.interface, row.connected_at): row.position for row in stored
    }
    # A leg read from channel variables (the service started mid-call) has no
    # channel; it is the same agent as a tracked leg on the same interface.
    last_by_interface = {row.interface: row.position for row in stored}
    channel_less = {row.interface: row.position for row in stored if not row.channel}
    next_position = stored[-1].position + 1 if stored else 0
    rows: list[dict[str, Any]] = []
    for leg in legs:
        connected_at = to_datetime(leg.connected_at)
        assert connected_at is not None
        key = _leg_key(leg.channel, leg.interface, connected_at)
        position = positions.get(key)
        if position is None and not leg.channel:
            known = last_by_interface.get(leg.interface)
            if known is not None:
                continue  # the stored leg already knows at least as much
        if position is None and leg.channel:
            position = channel_less.pop(leg.interface, None)
        if position is None:
            position = next_position
            next_position += 1
        positions[key] = position
        last_by_interface[leg.interface] = position
        rows.append(_leg_row(call_id, position, leg, connected_at))
    for row in rows:
        statement = _insert(session, agents).values(row)
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[agents.c.call_id, agents.c.position],
                set_={
                    **{name: excluded[name] for name in _LEG_REPLACED_COLUMNS},
                    **_keep_known(agents, excluded, _LEG_MERGED_COLUMNS),
                },
            )
        )
    # The credited agent is the last of the stored chain, which may be longer
    # than the chain in this record.
    last = (
        sa.select(agents.c.name, agents.c.interface)
        .where(agents.c.call_id == call_id)
        .order_by(agents.c.position.desc())
        .limit(1)
    )
    name, interface = (await session.execute(last)).one()
    await session.execute(
        sa.update(Call).where(Call.id == call_id).values(agent_name=name, agent_interface=interface)
    )


def _leg_row(call_id: int, position: int, leg: AgentLeg, connected_at: datetime) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "position": position,
        "name": leg.name,
        "interface": leg.interface,
        "queue": leg.queue,
        "channel": leg.channel,
        "connected_at": connected_at,
        "hold_seconds": leg.hold_seconds,
        "ring_seconds": leg.ring_seconds,
        "talk_seconds": leg.talk_seconds,
        "ended_by": None if leg.ended_by is None else leg.ended_by.value,
    }


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
