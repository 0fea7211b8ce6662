"""Keeping the report rollups up to date: what a refresh recomputes, and doing it.

Separate from the readers because it is the only code that writes the rollup
tables, and its locking (one refresh at a time across service instances) is
its own concern; see `storage.analytics` for why the rollups exist.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.database import database_errors
from storage.models import RollupState as RollupStateRow
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

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredState:
    """The state row as read: None everywhere before the first refresh."""

    complete_before: datetime | None
    settled_at: datetime | None
    zone: str | None


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """What one refresh recomputes: day rows from `start` (None: all) to
    `cutoff`, in `zone`'s days; `rezoned` names the zone of rollups rebuilt
    because the configured one differs."""

    previous: datetime | None
    settled: datetime | None
    cutoff: datetime
    settle: bool
    start: date | None
    zone: ZoneInfo
    rezoned: str | None = None


def plan_refresh(
    now: datetime, state: StoredState, settle_days: int, full: bool, zone: ZoneInfo
) -> RefreshPlan:
    """Rollups of another zone's days share no row with `zone`'s: all rebuilt."""
    rezoned = state.zone if state.zone is not None and state.zone != zone.key else None
    previous = None if full or rezoned is not None else state.complete_before
    cutoff = now - OPEN_SURVEY_GRACE
    if previous is not None:
        cutoff = max(cutoff, previous)
    settled = state.settled_at
    settle = previous is None or settled is None or now - settled >= SETTLE_EVERY
    start: date | None = None
    if previous is not None:
        start = previous.astimezone(zone).date()
        if settle:
            start -= timedelta(days=settle_days)
    return RefreshPlan(
        previous=previous,
        settled=settled,
        cutoff=cutoff,
        settle=settle,
        start=start,
        zone=zone,
        rezoned=rezoned,
    )


async def refresh_rollups(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    settle_days: int,
    full: bool,
    zone: ZoneInfo,
) -> None:
    """Move the cut-off to OPEN_SURVEY_GRACE before now and recompute behind it.

    Recomputes the previous cut-off's whole day (and, every SETTLE_EVERY,
    the SETTLE_DAYS before it), then the month and total rows touched; all
    of them when the rollups were kept for another zone than `zone` (the
    rebuild is logged with its duration: on millions of surveys it takes a
    while, and the reports read raw rows until it is done). The
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
    began = time.monotonic()
    expected, computed = await _computed_ahead(
        sessions, now, settle_days=settle_days, full=full, zone=zone
    )
    async with (
        database_errors("refresh the report rollups"),
        sessions.begin() as session,
    ):
        await _claim(session, now, zone)
        plan = plan_refresh(now, await _state(session, lock=True), settle_days, full, zone)
        if expected is not None and plan != expected:
            return
        await _recompute_all(session, plan, computed)
        await session.execute(
            sa.update(table_of(RollupStateRow))
            .where(RollupStateRow.id == 1)
            .values(
                complete_before=plan.cutoff,
                settled_at=now if plan.settle else plan.settled,
                refreshed_at=now,
                zone=zone.key,
            )
        )
    if plan.rezoned is not None:
        log.info(
            "report rollups rebuilt for %s days (they were kept for %s days) in %.1f s",
            zone.key,
            plan.rezoned,
            time.monotonic() - began,
        )


async def _recompute_all(
    session: AsyncSession, plan: RefreshPlan, computed: dict[str, list[dict[str, Any]]] | None
) -> None:
    dialect = dialect_of(session)
    closed_months = month_start(plan.cutoff.astimezone(plan.zone).date())
    for model, raw in ROLLUPS:
        table = table_of(model)
        rows = None if computed is None else computed[model.__tablename__]
        await _recompute(session, dialect, table, raw, plan=plan, rows=rows)
        await _recompute_months(session, dialect, table, plan.start, closed_months)
        if model in WITH_TOTALS:
            await _recompute_totals(session, table, plan.start)


async def _computed_ahead(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    settle_days: int,
    full: bool,
    zone: ZoneInfo,
) -> tuple[RefreshPlan | None, dict[str, list[dict[str, Any]]] | None]:
    """On SQLite, the plan and its day rows, read before the write transaction."""
    async with database_errors("refresh the report rollups"), sessions() as session:
        if dialect_of(session) != "sqlite":
            return None, None
        expected = plan_refresh(now, await _state(session), settle_days, full, zone)
        computed: dict[str, list[dict[str, Any]]] = {}
        for model, raw in ROLLUPS:
            low = None if expected.start is None else midnight(expected.start, zone)
            result = await session.execute(raw("sqlite", low, expected.cutoff, zone))
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
        low = None if plan.start is None else midnight(plan.start, plan.zone)
        columns = [column.name for column in table.c]
        computed = raw(dialect, low, plan.cutoff, plan.zone)
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


async def _claim(session: AsyncSession, now: datetime, zone: ZoneInfo) -> None:
    """Write the state row first thing (created if missing): see `refresh`."""
    state = table_of(RollupStateRow)
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    await session.execute(
        insert(state)
        .values(id=1, complete_before=None, settled_at=None, refreshed_at=now, zone=zone.key)
        .on_conflict_do_nothing(index_elements=[state.c.id])
    )


async def _state(session: AsyncSession, *, lock: bool = False) -> StoredState:
    statement = sa.select(
        RollupStateRow.complete_before, RollupStateRow.settled_at, RollupStateRow.zone
    ).where(RollupStateRow.id == 1)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return StoredState(complete_before=None, settled_at=None, zone=None)
    return StoredState(complete_before=row[0], settled_at=row[1], zone=row[2])
