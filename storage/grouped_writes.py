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
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.core.domain import CallRecord
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
from storage.write_statements import WriteStatements

_SurveyWrite = TypeVar("_SurveyWrite", SaveAnswer, SaveComment, FinishSurvey)

RealId = Callable[[int, dict[int, int | None]], int | None]
"""The database id of a survey (or None for a repeat not stored), given the
provisional ids settled so far in this batch."""


@dataclass
class Group:
    """Writes that touch different rows (`keys`), sorted by kind as they come.

    `positions` are the writes' places in the batch; `saves` is every call
    upsert (a call's record, a policy decision, a survey start's call).
    """

    positions: list[int] = field(default_factory=list)
    keys: set[Hashable] = field(default_factory=set)
    saves: list[tuple[CallRecord, str | None]] = field(default_factory=list)
    begins: list[tuple[int, BeginSurvey]] = field(default_factory=list)
    answers: list[SaveAnswer] = field(default_factory=list)
    comments: list[SaveComment] = field(default_factory=list)
    statuses: list[FinishSurvey] = field(default_factory=list)

    def add(self, index: int, write: Write) -> None:
        self.positions.append(index)
        if isinstance(write, SaveAnswer):
            self.answers.append(write)
        elif isinstance(write, SaveCall):
            self.saves.append((write.call, None))
        elif isinstance(write, RecordDecision):
            self.saves.append((write.call, write.decision))
        elif isinstance(write, BeginSurvey):
            self.saves.append((write.call, None))
            self.begins.append((index, write))
        elif isinstance(write, FinishSurvey):
            self.statuses.append(write)
        else:
            self.comments.append(write)


def _keys(write: Write) -> tuple[Hashable, ...]:
    """The rows a write touches, and the provisional survey it waits for."""
    if isinstance(write, SaveAnswer):
        touched: Hashable = ("answer", write.survey_id, write.answer.question)
    elif isinstance(write, SaveCall | RecordDecision):
        return (("call", write.call.pbx, write.call.linkedid),)
    elif isinstance(write, BeginSurvey):
        call = ("call", write.call.pbx, write.call.linkedid)
        return (call,) if write.provisional is None else (call, ("survey", write.provisional))
    elif isinstance(write, SaveComment):
        touched = ("comment", write.survey_id)
    else:
        touched = ("status", write.survey_id)
    if write.survey_id < 0:
        # Its survey may start in this very batch (a spool being replayed).
        return (touched, ("survey", write.survey_id))
    return (touched,)


def groups(writes: Sequence[Write]) -> list[Group]:
    """`writes` cut into runs whose writes touch different rows, in batch order."""
    cut = [Group()]
    for index, write in enumerate(writes):
        keys = _keys(write)
        group = cut[-1]
        if any(key in group.keys for key in keys):
            group = Group()
            cut.append(group)
        group.keys.update(keys)
        group.add(index, write)
    return [group for group in cut if group.positions]


async def apply(
    connection: AsyncConnection,
    writes: Sequence[Write],
    *,
    replaying: bool,
    real_id: RealId,
) -> dict[int, int | None]:
    """Run the writes in one transaction (the caller's); return each begin's
    survey id by its position in `writes`."""
    outcomes: dict[int, int | None] = {}
    fresh: dict[int, int | None] = {}
    for group in groups(writes):
        await _apply_group(connection, group, outcomes, fresh, replaying=replaying, real_id=real_id)
    return outcomes


async def _apply_group(
    connection: AsyncConnection,
    group: Group,
    outcomes: dict[int, int | None],
    fresh: dict[int, int | None],
    *,
    replaying: bool,
    real_id: RealId,
) -> None:
    sql = upserts.statements(connection)
    call_ids = await _merge_calls(connection, sql, group.saves) if group.saves else {}
    if group.begins:
        opened = await _open_surveys(connection, sql, group.begins, call_ids, replaying=replaying)
        for index, begin in group.begins:
            outcomes[index] = opened[index]
            if begin.provisional is not None:
                fresh[begin.provisional] = opened[index]
    answers = _rows(group.answers, fresh, real_id, lambda w, i: upserts.answer_row(i, w.answer))
    if answers:
        await connection.execute(sql.upsert_answer, answers)
    comments = _rows(group.comments, fresh, real_id, lambda w, i: upserts.comment_row(i, w.comment))
    if comments:
        await connection.execute(sql.insert_comment, comments)
    statuses = _rows(
        group.statuses,
        fresh,
        real_id,
        lambda w, i: upserts.status_row(i, w.status, w.finished_at),
    )
    if statuses:
        await _finish_surveys(connection, sql, statuses)


def _rows(
    writes: Sequence[_SurveyWrite],
    fresh: dict[int, int | None],
    real_id: RealId,
    row: Callable[[_SurveyWrite, int], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The statement parameters of writes to a survey, under its database id;
    a repeat survey's writes (no id: the call was surveyed already) are left out."""
    rows = []
    for write in writes:
        survey_id = real_id(write.survey_id, fresh)
        if survey_id is not None:
            rows.append(row(write, survey_id))
    return rows


async def _merge_calls(
    connection: AsyncConnection,
    sql: WriteStatements,
    saves: Sequence[tuple[CallRecord, str | None]],
) -> dict[tuple[str, str], int]:
    """Upsert every call of a group and merge their agent chains; their ids by (pbx, linkedid)."""
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
    sql: WriteStatements,
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
    connection: AsyncConnection, sql: WriteStatements, statuses: list[dict[str, Any]]
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
