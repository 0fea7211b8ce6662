"""The survey store's writes as rows and single-write functions, over the shared statements.

The statements themselves (and why they are built once per dialect) are in
`storage.write_statements`. Here are the rows bound to them, the rules that
need Python (which agent legs are new, which survey start is valid), and one
function per write. The group-commit writer (`storage.writer`, through
`storage.grouped_writes`) uses the rows and rules; the single-write functions
are its one-write-per-transaction reference (bench/call_writes.py), so the
merge rules exist once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ivr.core.domain import AgentLeg, Answer, CallRecord, Comment, SurveyStart, SurveyStatus
from storage.models import Call, Survey, SurveyAnswer
from storage.write_statements import WriteStatements, statements_for

Executor = AsyncSession | AsyncConnection
"""Either a session or a bare connection (the writer's)."""


def to_datetime(epoch: float | None) -> datetime | None:
    """The domain keeps call times as epoch seconds (the clock AMI events were
    received on); the schema keeps them as UTC timestamps that SQL can filter."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def statements(executor: Executor) -> WriteStatements:
    bind = executor.get_bind() if isinstance(executor, AsyncSession) else executor
    return statements_for(bind.dialect.name)


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


class _Clock:
    """Now, strictly increasing within the process.

    A call row's `created_at` is the `now` of the save that inserted it, so a
    save that reads back its own `now` knows the row is new (it has no stored
    legs to read). Strictly increasing values keep two saves of this process
    from ever sharing one.
    """

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        now = datetime.now(UTC)
        if now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now


_now = _Clock()


def call_row(call: CallRecord, now: datetime, decision: str | None = None) -> dict[str, Any]:
    """The call's upsert parameters; `now` is its created_at if this save inserts it."""
    last = call.agents[-1] if call.agents else None
    return {
        "pbx": call.pbx,
        "linkedid": call.linkedid,
        "caller_uniqueid": call.caller_uniqueid,
        "caller_channel": call.caller_channel,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "caller_key": call.caller_key,
        "policy_decision": decision,
        "queue": call.queue,
        # Only kept when this save inserts the row; see `plan_legs`.
        "agent_name": None if last is None else last.name,
        "agent_interface": None if last is None else last.interface,
        "hold_seconds": call.hold_seconds,
        "talk_seconds": call.talk_seconds,
        "ended_by": None if call.ended_by is None else call.ended_by.value,
        "abandoned": call.abandoned,
        "transferred": call.transferred,
        "partial": call.partial,
        "started_at": to_datetime(call.started_at),
        "answered_at": to_datetime(call.answered_at),
        "ended_at": to_datetime(call.ended_at),
        "created_at": now,
        "updated_at": now,
    }


def save_time() -> datetime:
    """A call upsert's `now`: strictly increasing, so the row it inserted tells."""
    return _now()


async def merge_call(executor: Executor, call: CallRecord, decision: str | None = None) -> int:
    """Upsert the call and its agent chain; return the call's id.

    The call's upsert comes first: it takes the row's lock on PostgreSQL (the
    write lock on SQLite), so the leg positions read next cannot be taken by a
    concurrent save of the same call.
    """
    sql = statements(executor)
    at = _now()
    stored = (await executor.execute(sql.merge_call, call_row(call, at, decision))).one()
    if call.agents:
        inserted = stored.created_at == at
        legs: Sequence[Any] = (
            []
            if inserted
            else (await executor.execute(sql.stored_legs, {"call_id": stored.id})).all()
        )
        rows, credit = plan_legs(
            stored.id, call.agents, legs, credited=(stored.agent_name, stored.agent_interface)
        )
        if rows:
            await executor.execute(sql.merge_leg, rows)
        if credit is not None:
            await executor.execute(sql.credit_last_agent, credit)
    return int(stored.id)


def plan_legs(
    call_id: int,
    legs: Sequence[AgentLeg],
    stored: Sequence[Any],
    *,
    credited: tuple[str | None, str | None],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Merge each leg into the stored leg it matches, or append it to the chain.

    Pure: `stored` are the call's stored legs in position order (none for a
    row the save just inserted). Returns the leg rows to upsert and the
    credited-agent update, None when the credited agent (`calls.agent_name`,
    the last of the stored chain, which may be longer than the chain in this
    record) is unchanged.
    """
    positions: dict[tuple[str, ...], int] = {
        _leg_key(row.channel, row.interface, row.connected_at): row.position for row in stored
    }
    chain: dict[int, tuple[str, str]] = {row.position: (row.name, row.interface) for row in stored}
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
        chain[position] = (leg.name, leg.interface)
        rows.append(_leg_row(call_id, position, leg, connected_at))
    if not chain:
        return rows, None
    name, interface = chain[max(chain)]
    if (name, interface) == credited:
        return rows, None
    return rows, {"call_id": call_id, "agent_name": name, "interface": interface}


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


def check_start(call: CallRecord, start: SurveyStart) -> None:
    """A survey is never attached to the wrong call by a wiring mistake."""
    if (start.pbx, start.linkedid) != (call.pbx, call.linkedid):
        raise ValueError(
            f"survey start for {start.pbx}/{start.linkedid} "
            f"given the call {call.pbx}/{call.linkedid}"
        )


async def begin_survey(executor: Executor, call: CallRecord, start: SurveyStart) -> int | None:
    """Merge the call and open its survey; None when the call already has one.

    The survey INSERT does nothing on a conflict with the UNIQUE call_id, so of
    two concurrent requests for one call exactly one gets an id. (A spool
    replayed after a crash adopts its own earlier write: storage.grouped_writes.)
    """
    check_start(call, start)
    sql = statements(executor)
    call_id = await merge_call(executor, call)
    opened = (await executor.execute(sql.open_survey, survey_row(call_id, start))).one_or_none()
    return None if opened is None else int(opened.id)


def survey_row(call_id: int, start: SurveyStart) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "channel": start.channel,
        "uniqueid": start.uniqueid,
        "language": start.language,
        "status": SurveyStatus.IN_PROGRESS.value,
        "started_at": start.started_at,
        "opted_in": start.opted_in,
        "initiated_by": start.initiated_by,
    }


def status_row(survey_id: int, status: SurveyStatus, finished_at: datetime) -> dict[str, Any]:
    return {
        "survey_id": survey_id,
        "status": SurveyStatus(status).value,
        "finished_at": finished_at,
    }


def comment_row(survey_id: int, comment: Comment) -> dict[str, Any]:
    return {
        "survey_id": survey_id,
        "file": comment.file,
        "format": comment.format,
        "duration_seconds": comment.duration_seconds,
        "ended_by": comment.ended_by,
        "recorded_at": comment.recorded_at,
    }


def answer_row(survey_id: int, answer: Answer) -> dict[str, Any]:
    return {
        "survey_id": survey_id,
        "question": answer.question,
        "value": answer.value,
        "attempts": answer.attempts,
        "answered_at": answer.answered_at,
    }


async def save_answers(executor: Executor, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert answers in order (`answer_row`s), as one executemany."""
    if rows:
        await executor.execute(statements(executor).upsert_answer, list(rows))


async def finish_survey(
    executor: Executor, survey_id: int, status: SurveyStatus, finished_at: datetime
) -> None:
    """Record where the survey stopped; an unknown id is a bug and raises."""
    result = await executor.execute(
        statements(executor).finish_survey, status_row(survey_id, status, finished_at)
    )
    if cast(sa.CursorResult[Any], result).rowcount == 0:
        raise LookupError(f"no survey with id {survey_id}")


async def save_comment(executor: Executor, survey_id: int, comment: Comment) -> None:
    """Link the caller's recorded comment to the survey; a second one is ignored."""
    await executor.execute(statements(executor).insert_comment, comment_row(survey_id, comment))


async def record_decision(executor: Executor, call: CallRecord, decision: str) -> None:
    """Merge the call (it may not be stored yet) with the policy's decision.

    A later request for the same call replaces the decision, except that
    'eligible' stays (see `statements_for`); a save without a decision (the AMI
    path) never erases one.
    """
    await merge_call(executor, call, decision)


async def mark_interrupted(connection: AsyncConnection, before: datetime) -> list[str]:
    """Surveys left `in_progress` by a process that died become `interrupted`,
    finished at their last answer (or their start); returns their Linkedids.

    Only surveys started before `before` (this process's start): none of this
    process's own can be among them.
    """
    last_answer = (
        sa.select(sa.func.max(SurveyAnswer.answered_at))
        .where(SurveyAnswer.survey_id == Survey.id)
        .scalar_subquery()
    )
    open_surveys = sa.and_(
        Survey.status == SurveyStatus.IN_PROGRESS.value, Survey.started_at < before
    )
    found = await connection.execute(
        sa.select(Call.linkedid).join(Survey, Survey.call_id == Call.id).where(open_surveys)
    )
    linkedids = [row[0] for row in found]
    if linkedids:
        await connection.execute(
            sa.update(Survey)
            .where(open_surveys)
            .values(
                status=SurveyStatus.INTERRUPTED.value,
                finished_at=sa.func.coalesce(last_answer, Survey.started_at),
            )
        )
    return linkedids
