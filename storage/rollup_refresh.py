"""Keeping the report rollups up to date: what a refresh recomputes, and doing it.

Separate from the readers because it is the only code that writes the rollup
tables, and its locking (one refresh at a time across service instances) is
its own concern; see `storage.analytics` for why the rollups exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.database import database_errors
from storage.models import RollupState
from storage.report_sql import (
    DAY_GRAIN,
    MONTH_GRAIN,
    OPEN_SURVEY_GRACE,
    SETTLE_EVERY,
    TOTAL_GRAIN,
    midnight,
    month_start,
    table_of,
)
from storage.rollup_queries import (
    ROLLUPS,
    WITH_TOTALS,
    RawRows,
    day_totals,
    dialect_of,
    monthly_rows,
)


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """What one refresh recomputes: day rows from `start` (None: all) to `cutoff`."""

    previous: datetime | None
    settled: datetime | None
    cutoff: datetime
    settle: bool
    start: date | None


def plan_refresh(
    now: datetime,
    previous: datetime | None,
    settled: datetime | None,
    settle_days: int,
    full: bool,
) -> RefreshPlan:
    if full:
        previous = None
    cutoff = now - OPEN_SURVEY_GRACE
    if previous is not None:
        cutoff = max(cutoff, previous)
    settle = previous is None or settled is None or now - settled >= SETTLE_EVERY
    start: date | None = None
    if previous is not None:
        start = previous.astimezone(UTC).date()
        if settle:
            start -= timedelta(days=settle_days)
    return RefreshPlan(
        previous=previous, settled=settled, cutoff=cutoff, settle=settle, start=start
    )


async def refresh_rollups(
    sessions: async_sessionmaker[AsyncSession], now: datetime, *, settle_days: int, full: bool
) -> None:
    """Move the cut-off to OPEN_SURVEY_GRACE before now and recompute behind it.

    Recomputes the previous cut-off's whole day (and, every SETTLE_EVERY,
    the SETTLE_DAYS before it), then the month and total rows touched. The
    write transaction starts by writing the state row, which takes SQLite's
    write lock and PostgreSQL's row lock before the state is read, so two
    refreshes (two service instances) run one after the other.

    On PostgreSQL the day rows are computed inside that transaction (INSERT
    ... SELECT): its row versions keep survey writes from ever waiting on
    it. SQLite has one writer, and the survey's writes queue behind
    whoever holds it, so there the day rows are computed first in a read
    transaction (WAL readers block nobody) and only written in the short
    write transaction - skipped if another refresh got there in between.
    """
    expected, computed = await _computed_ahead(sessions, now, settle_days=settle_days, full=full)
    async with (
        database_errors("refresh the report rollups"),
        sessions.begin() as session,
    ):
        await _claim(session, now)
        plan = plan_refresh(now, *await _state(session, lock=True), settle_days, full)
        if expected is not None and plan != expected:
            return
        dialect = dialect_of(session)
        closed_months = month_start(plan.cutoff.astimezone(UTC).date())
        for model, raw in ROLLUPS:
            table = table_of(model)
            rows = None if computed is None else computed[model.__tablename__]
            await _recompute(session, dialect, table, raw, plan=plan, rows=rows)
            await _recompute_months(session, dialect, table, plan.start, closed_months)
            if model in WITH_TOTALS:
                await _recompute_totals(session, table, plan.start)
        await session.execute(
            sa.update(RollupState)
            .where(RollupState.id == 1)
            .values(
                complete_before=plan.cutoff,
                settled_at=now if plan.settle else plan.settled,
                refreshed_at=now,
            )
        )


async def _computed_ahead(
    sessions: async_sessionmaker[AsyncSession], now: datetime, *, settle_days: int, full: bool
) -> tuple[RefreshPlan | None, dict[str, list[dict[str, Any]]] | None]:
    """On SQLite, the plan and its day rows, read before the write transaction."""
    async with database_errors("refresh the report rollups"), sessions() as session:
        if dialect_of(session) != "sqlite":
            return None, None
        expected = plan_refresh(now, *await _state(session), settle_days, full)
        computed: dict[str, list[dict[str, Any]]] = {}
        for model, raw in ROLLUPS:
            low = None if expected.start is None else midnight(expected.start)
            result = await session.execute(raw("sqlite", low, expected.cutoff))
            computed[model.__tablename__] = [dict(row._mapping) for row in result]
    return expected, computed


async def _recompute(
    session: AsyncSession,
    dialect: str,
    table: sa.Table,
    raw: RawRows,
    *,
    plan: RefreshPlan,
    rows: list[dict[str, Any]] | None,
) -> None:
    """Day rows from the plan's start (None: all) up to its cut-off: the rows
    given, or computed by the database itself when None."""
    delete = sa.delete(table).where(table.c.grain == DAY_GRAIN)
    if plan.start is not None:
        delete = delete.where(table.c.day >= plan.start)
    await session.execute(delete)
    if rows is None:
        low = None if plan.start is None else midnight(plan.start)
        columns = [column.name for column in table.c]
        computed = raw(dialect, low, plan.cutoff)
        await session.execute(sa.insert(table).from_select(columns, computed))
    elif rows:
        await session.execute(sa.insert(table), rows)


async def _recompute_months(
    session: AsyncSession,
    dialect: str,
    table: sa.Table,
    start: date | None,
    closed_months: date,
) -> None:
    """Month rows of the months from `start`'s up to the cut-off's (excluded)."""
    first = None if start is None else month_start(start)
    delete = sa.delete(table).where(table.c.grain == MONTH_GRAIN)
    if first is not None:
        delete = delete.where(table.c.day >= first)
    await session.execute(delete)
    if first is None or first < closed_months:
        columns = [column.name for column in table.c]
        monthly = monthly_rows(dialect, table, first, closed_months)
        await session.execute(sa.insert(table).from_select(columns, monthly))


async def _recompute_totals(session: AsyncSession, table: sa.Table, start: date | None) -> None:
    """Total rows of the days from `start` (None: all), from their day rows."""
    delete = sa.delete(table).where(table.c.grain == TOTAL_GRAIN)
    if start is not None:
        delete = delete.where(table.c.day >= start)
    await session.execute(delete)
    columns = [column.name for column in table.c]
    await session.execute(sa.insert(table).from_select(columns, day_totals(table, start)))


async def _claim(session: AsyncSession, now: datetime) -> None:
    """Write the state row first thing (created if missing): see `refresh`."""
    state = table_of(RollupState)
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    await session.execute(
        insert(state)
        .values(id=1, complete_before=None, settled_at=None, refreshed_at=now)
        .on_conflict_do_nothing(index_elements=[state.c.id])
    )


async def _state(
    session: AsyncSession, *, lock: bool = False
) -> tuple[datetime | None, datetime | None]:
    """(complete_before, settled_at); both None before the first refresh."""
    statement = sa.select(RollupState.complete_before, RollupState.settled_at).where(
        RollupState.id == 1
    )
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    return (None, None) if row is None else (row[0], row[1])
