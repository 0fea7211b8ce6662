"""What the survey policy reads, the opt-out list, and the retention purge.

The history is read while the caller waits for the intro, so it is ONE
statement of at most three indexed lookups, each only when a rule uses it: the
caller's latest survey on any PBX (ix_calls_caller_key, then the survey by its
unique call_id) for a cooldown, the queue's surveys of the day
(ix_surveys_started_at, then the call by its id; counted up to the cap) for a
daily cap, and the opt-out list by its primary key, always.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.core.domain import CallRecord
from ivr.core.policy import HistoryNeeds, PolicyHistory
from storage.database import database_errors
from storage.models import Call, OptOut, Survey
from storage.recordings import purge_recordings


@dataclass(frozen=True, slots=True)
class OptOutEntry:
    """One opted-out caller; `number` is None when stored anonymously."""

    caller_key: str
    number: str | None
    added_at: datetime


class SqlPolicyHistory:
    """The facts `ivr.core.policy.decide` needs, read while the caller waits for the intro.

    It runs on an engine of its own (ivr/runtime/service.py), so a dashboard query or
    the writer never holds the connection a caller needs, and on Core with
    statements built once per dialect and shape: building the select with the
    ORM for every call cost more than running it.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def history(self, call: CallRecord, needs: HistoryNeeds) -> PolicyHistory:
        """This call itself left out; `call.caller_key` None (no caller number) has
        no history: no cooldown and no opt-out can apply to an unknown caller.
        Only what the rules use is read (`HistoryNeeds`); the rest stays at its
        default, which no rule then looks at."""
        knows_caller = call.caller_key is not None
        statement = _history_statement(
            opt_out=knows_caller,
            cooldown=knows_caller and needs.cooldown,
            cap=call.queue is not None and needs.cap > 0,
        )
        parameters = {
            "pbx": call.pbx,
            "linkedid": call.linkedid,
            "caller_key": call.caller_key,
            "queue": call.queue,
            "day_start": needs.day_start,
            "cap": needs.cap,
        }
        async with (
            database_errors(f"read the survey history of call {call.linkedid}"),
            self._engine.connect() as connection,
        ):
            row = (await connection.execute(statement, parameters)).one()
        return PolicyHistory(
            last_surveyed_at=row.last,
            queue_surveys_today=int(row.today or 0),
            opted_out=bool(row.opted),
            this_call_surveyed=bool(row.surveyed),
        )


@functools.cache
def _history_statement(*, opt_out: bool, cooldown: bool, cap: bool) -> sa.Select[Any]:
    """ONE statement for what is needed: the caller's latest survey on any PBX,
    the queue's surveys since `day_start` counted up to `cap` (whether the cap
    is reached is all a rule asks), and whether the caller opted out."""
    calls = cast(sa.Table, Call.__table__)
    surveys = cast(sa.Table, Survey.__table__)
    optouts = cast(sa.Table, OptOut.__table__)
    other_call = sa.not_(
        sa.and_(calls.c.pbx == sa.bindparam("pbx"), calls.c.linkedid == sa.bindparam("linkedid"))
    )
    last: sa.ColumnElement[Any] = sa.null()
    opted: sa.ColumnElement[Any] = sa.false()
    today: sa.ColumnElement[Any] = sa.literal(0)
    if cooldown:
        last = (
            sa.select(sa.func.max(surveys.c.started_at))
            .join(calls, calls.c.id == surveys.c.call_id)
            .where(calls.c.caller_key == sa.bindparam("caller_key"), other_call)
            .scalar_subquery()
        )
    if opt_out:
        opted = sa.exists().where(optouts.c.caller_key == sa.bindparam("caller_key"))
    if cap:
        counted = (
            sa.select(surveys.c.id)
            .join(calls, calls.c.id == surveys.c.call_id)
            .where(
                surveys.c.started_at >= sa.bindparam("day_start", type_=surveys.c.started_at.type),
                calls.c.queue == sa.bindparam("queue"),
                other_call,
            )
            .limit(sa.bindparam("cap", type_=sa.Integer))
            .subquery()
        )
        today = sa.select(sa.func.count()).select_from(counted).scalar_subquery()
    # Always read: one probe of the unique (pbx, linkedid) index.
    surveyed = sa.exists(
        sa.select(surveys.c.id)
        .join(calls, calls.c.id == surveys.c.call_id)
        .where(calls.c.pbx == sa.bindparam("pbx"), calls.c.linkedid == sa.bindparam("linkedid"))
    )
    return sa.select(
        sa.type_coerce(last, surveys.c.started_at.type).label("last"),
        today.label("today"),
        opted.label("opted"),
        surveyed.label("surveyed"),
    )


class SqlPolicyStore:
    """The opt-out list, for `ivr-survey optout` and the service's remembered copy."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add_optout(self, caller_key: str, number: str | None, added_at: datetime) -> bool:
        """Add the caller; False when they were already on the list (left unchanged)."""
        table = cast(sa.Table, OptOut.__table__)
        async with database_errors("add an opt-out"), self._sessions.begin() as session:
            insert = _insert(session, table).values(
                caller_key=caller_key, number=number, added_at=added_at
            )
            statement = insert.on_conflict_do_nothing(index_elements=[table.c.caller_key])
            result = await session.execute(statement.returning(table.c.caller_key))
            return result.scalar_one_or_none() is not None

    async def remove_optout(self, caller_key: str) -> bool:
        """Remove the caller; False when they were not on the list."""
        async with database_errors("remove an opt-out"), self._sessions.begin() as session:
            result = await session.execute(sa.delete(OptOut).where(OptOut.caller_key == caller_key))
            return cast(sa.CursorResult[Any], result).rowcount > 0

    async def optouts(self) -> list[OptOutEntry]:
        """The whole list, oldest first."""
        async with database_errors("list the opt-outs"), self._sessions() as session:
            rows = await session.execute(
                sa.select(OptOut).order_by(OptOut.added_at, OptOut.caller_key)
            )
            return [OptOutEntry(row.caller_key, row.number, row.added_at) for row in rows.scalars()]


def _insert(session: AsyncSession, table: sa.Table) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# --- Retention purge -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeStep:
    """One kind of personal data that expires; `run` clears what is older than
    the cut-off and returns how many rows it changed."""

    what: str
    run: Callable[[async_sessionmaker[AsyncSession], datetime], Awaitable[int]]


async def purge_caller_numbers(sessions: async_sessionmaker[AsyncSession], before: datetime) -> int:
    """Clear caller numbers and names of calls that started before `before`.

    `caller_key` stays, so cooldowns and opt-outs keep matching the caller;
    in anonymous mode there is nothing to clear. A call without a start time
    is judged by when it was stored.
    """
    started = sa.func.coalesce(Call.started_at, Call.created_at)
    async with database_errors("purge caller numbers"), sessions.begin() as session:
        result = await session.execute(
            sa.update(Call)
            .where(
                started < before,
                sa.or_(Call.caller_number.is_not(None), Call.caller_name.is_not(None)),
            )
            .values(caller_number=None, caller_name=None)
        )
        return cast(sa.CursorResult[Any], result).rowcount


# Each retention step, run in order by `ivr-survey purge` and the service's
# scheduled purge: a new kind of expiring data is one more line here.
PURGE_STEPS: tuple[PurgeStep, ...] = (PurgeStep("caller numbers and names", purge_caller_numbers),)


async def purge(
    sessions: async_sessionmaker[AsyncSession], before: datetime, *, recordings_dir: str = ""
) -> list[tuple[str, int]]:
    """Run every purge step, then the recorded comments; (what, count) for each.

    Recordings are files as well as rows (storage/recordings.py): the files go
    where `recordings_dir` is visible from here, the links to them always.
    """
    done = [(step.what, await step.run(sessions, before)) for step in PURGE_STEPS]
    recordings = await purge_recordings(sessions, before=before, recordings_dir=recordings_dir)
    done.append(("recorded comments", recordings.cleared))
    return done
