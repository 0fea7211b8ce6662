"""A batch of the writer's writes as a few statements, not a few per write.

One statement costs about half a millisecond of Python and driver work
(SQLAlchemy's execute path, aiosqlite's thread hop, an asyncpg round trip)
before the database does anything: measured at 12 statements and 5.6 s for
1000 calls' writes, the group-commit writer topped out near 180 calls a
second on an idle machine, and a shift change runs at a hundred. Here a batch
is cut into groups of writes that touch different rows (two saves of one
call, two saves of one answer, a survey's start and its answers while it has
only a provisional id: each such pair splits the group), so a group's writes
can run in any order; each kind then runs as one statement for the group:
the call upserts (`insertmanyvalues` turns an executemany with RETURNING
into one multi-row INSERT), the stored legs of the calls that existed, the
leg upserts, the credited agents, the survey inserts, the answers, the
comments and the statuses. Groups run in batch order, so the writes of one
call or survey keep theirs. The merge rules are the single-write ones
(`storage.upserts`); only the statements are shared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from storage import upserts
from storage.write_requests import (
    BeginSurvey,
    FinishSurvey,
    RecordDecision,
    SaveAnswer,
    SaveCall,
    SaveComment,
    Write,
)

RealId = Callable[[int, dict[int, int | None]], int | None]
"""The database id of a survey (or None for a repeat not stored), given the
provisional ids settled so far in this batch."""


@dataclass
class _Group:
    """Writes that touch different rows; `keys` are the rows they touch."""

    keys: set[Hashable] = field(default_factory=set)
    writes: list[tuple[int, Write]] = field(default_factory=list)


def _keys(write: Write) -> set[Hashable]:
    """The rows a write touches, and the provisional survey it waits for."""
    if isinstance(write, SaveCall | RecordDecision):
        return {("call", write.call.pbx, write.call.linkedid)}
    if isinstance(write, BeginSurvey):
        keys: set[Hashable] = {("call", write.call.pbx, write.call.linkedid)}
        if write.provisional is not None:
            keys.add(("survey", write.provisional))
        return keys
    if isinstance(write, SaveAnswer):
        keys = {("answer", write.survey_id, write.answer.question)}
    elif isinstance(write, SaveComment):
        keys = {("comment", write.survey_id)}
    else:
        keys = {("status", write.survey_id)}
    if write.survey_id < 0:
        # Its survey may start in this very batch (a spool being replayed).
        keys.add(("survey", write.survey_id))
    return keys


def groups(writes: Sequence[Write]) -> list[list[tuple[int, Write]]]:
    """`writes` (with their positions) cut into runs whose writes touch different rows."""
    cut: list[_Group] = [_Group()]
    for index, write in enumerate(writes):
        keys = _keys(write)
        if keys & cut[-1].keys:
            cut.append(_Group())
        cut[-1].keys |= keys
        cut[-1].writes.append((index, write))
    return [group.writes for group in cut if group.writes]


async def apply(
    connection: AsyncConnection,
    writes: Sequence[Write],
    *,
    replaying: bool,
    real_id: RealId,
) -> tuple[dict[int, int | None], dict[int, int | None]]:
    """Run the writes in one transaction (the caller's); return each begin's
    survey id by its position in `writes`, and the provisional ids settled."""
    outcomes: dict[int, int | None] = {}
    fresh: dict[int, int | None] = {}
    for group in groups(writes):
        await _apply_group(connection, group, outcomes, fresh, replaying=replaying, real_id=real_id)
    return outcomes, fresh


async def _apply_group(
    connection: AsyncConnection,
    group: Sequence[tuple[int, Write]],
    outcomes: dict[int, int | None],
    fresh: dict[int, int | None],
    *,
    replaying: bool,
    real_id: RealId,
) -> None:
    sql = upserts.statements(connection)
    call_ids = await _merge_calls(connection, sql, group)
    begins = [(index, write) for index, write in group if isinstance(write, BeginSurvey)]
    if begins:
        opened = await _open_surveys(connection, sql, begins, call_ids, replaying=replaying)
        for index, write in begins:
            outcomes[index] = opened[index]
            if write.provisional is not None:
                fresh[write.provisional] = opened[index]
    answers: list[dict[str, Any]] = []
    comments: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    for _, later in group:
        if isinstance(later, SaveAnswer):
            survey_id = real_id(later.survey_id, fresh)
            if survey_id is not None:
                answers.append(upserts.answer_row(survey_id, later.answer))
        elif isinstance(later, SaveComment):
            survey_id = real_id(later.survey_id, fresh)
            if survey_id is not None:
                comments.append(upserts.comment_row(survey_id, later.comment))
        elif isinstance(later, FinishSurvey):
            survey_id = real_id(later.survey_id, fresh)
            if survey_id is not None:
                statuses.append(upserts.status_row(survey_id, later.status, later.finished_at))
    if answers:
        await connection.execute(sql.upsert_answer, answers)
    if comments:
        await connection.execute(sql.insert_comment, comments)
    if statuses:
        await _finish_surveys(connection, sql, statuses)


async def _merge_calls(
    connection: AsyncConnection, sql: upserts.WriteStatements, group: Sequence[tuple[int, Write]]
) -> dict[tuple[str, str], int]:
    """Upsert every call of the group and merge their agent chains; their ids by (pbx, linkedid)."""
    saves = [
        (write.call, write.decision if isinstance(write, RecordDecision) else None)
        for _, write in group
        if isinstance(write, SaveCall | RecordDecision | BeginSurvey)
    ]
    if not saves:
        return {}
    rows = [upserts.call_row(call, upserts.save_time(), decision) for call, decision in saves]
    returned = (await connection.execute(sql.merge_call, rows)).all()
    stored = {(row.pbx, row.linkedid): row for row in returned}
    saved_at = {(row["pbx"], row["linkedid"]): row["created_at"] for row in rows}
    with_legs = [call for call, _ in saves if call.agents]
    existed = [
        stored[key].id
        for key in ((call.pbx, call.linkedid) for call in with_legs)
        if stored[key].created_at != saved_at[key]
    ]
    legs_of: defaultdict[int, list[Any]] = defaultdict(list)
    if existed:
        for leg in await connection.execute(sql.stored_legs_of_calls, {"call_ids": existed}):
            legs_of[leg.call_id].append(leg)
    leg_rows: list[dict[str, Any]] = []
    credits: list[dict[str, Any]] = []
    for call in with_legs:
        row = stored[(call.pbx, call.linkedid)]
        planned, credit = upserts.plan_legs(
            row.id, call.agents, legs_of[row.id], credited=(row.agent_name, row.agent_interface)
        )
        leg_rows += planned
        if credit is not None:
            credits.append(credit)
    if leg_rows:
        await connection.execute(sql.merge_leg, leg_rows)
    if credits:
        await connection.execute(sql.credit_last_agent, credits)
    return {key: int(row.id) for key, row in stored.items()}


async def _open_surveys(
    connection: AsyncConnection,
    sql: upserts.WriteStatements,
    begins: Sequence[tuple[int, BeginSurvey]],
    call_ids: dict[tuple[str, str], int],
    *,
    replaying: bool,
) -> dict[int, int | None]:
    """Each begin's survey id; None where the call had a survey already.

    When replaying a spool (`replaying`), a stored survey with this very start
    (same channel, uniqueid and start time) is the begin's own earlier write:
    a crash came between the commit and the spool's removal.
    """
    rows = {
        index: upserts.survey_row(call_ids[(write.call.pbx, write.call.linkedid)], write.start)
        for index, write in begins
    }
    returned = (await connection.execute(sql.open_survey, list(rows.values()))).all()
    by_call: dict[int, int | None] = {row.call_id: int(row.id) for row in returned}
    taken = {row["call_id"]: row for row in rows.values() if row["call_id"] not in by_call}
    if taken and replaying:
        found = await connection.execute(sql.surveys_of_calls, {"call_ids": list(taken)})
        for survey in found:
            start = taken[survey.call_id]
            own = (survey.uniqueid, survey.channel, survey.started_at) == (
                start["uniqueid"],
                start["channel"],
                start["started_at"],
            )
            by_call[survey.call_id] = int(survey.id) if own else None
    return {index: by_call.get(row["call_id"]) for index, row in rows.items()}


async def _finish_surveys(
    connection: AsyncConnection, sql: upserts.WriteStatements, statuses: list[dict[str, Any]]
) -> None:
    """Record where each survey stopped; an unknown id is a bug and raises.

    asyncpg reports no row count for an executemany, so the ids are checked
    with one read instead.
    """
    wanted = sorted({row["survey_id"] for row in statuses})
    stored = await connection.execute(sql.existing_surveys, {"survey_ids": wanted})
    found = {row.id for row in stored}
    if missing := [survey_id for survey_id in wanted if survey_id not in found]:
        raise LookupError(f"no survey with id {', '.join(map(str, missing))}")
    await connection.execute(sql.finish_survey, statuses)
