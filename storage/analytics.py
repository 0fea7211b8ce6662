"""The SQL behind the reports API and dashboard (`ivr.ports.ReportReader`).

Why rollups: with millions of surveys, a GROUP BY over the raw answers reads
every answer of the period (seconds on PostgreSQL, even for a month), while a
manager's screen needs an answer in well under a second. Three small tables
keep counts per day and group - (agent, queue, question), (queue, question,
duration bucket) and (agent, queue) for the funnel - plus one row per month and
group summed from the days, and the reports add up those rows instead: a year
is a dozen month rows and a few dozen day rows per group.

How they stay exact: `report_rollup_state.complete_before` is a cut-off
timestamp. The rollups count what started before it; whatever started from it
on is computed from the raw tables at query time, through the very SELECT that
fills the rollups, so the two paths cannot disagree. `refresh()` moves the
cut-off to OPEN_SURVEY_GRACE (10 minutes) before now - surveys still running are
always read raw - and recomputes the whole of the cut-off's day, and every
SETTLE_EVERY the SETTLE_DAYS before it too, because answers, survey endings and
call records of a day keep arriving for a while (a survey started at 23:59).
Nothing in the write path has to know about the rollups; the price is that a
late change to a rolled-up survey shows after the next refresh (today: within
[web] rollup_interval; the days before: within SETTLE_EVERY), and a correction
older than SETTLE_DAYS needs `refresh(full=True)`.

Times: stored times are UTC; days are the days of `[reports] timezone` (the
reader's `zone`) of the survey's start (of the call's start for the funnel's
handled and eligible steps): a survey at 23:30 UTC is the next day's in
Tehran. The rollups remember the zone they count (`report_rollup_state.zone`)
and a refresh rebuilds them when it changes. A reader for another zone
(`in_zone`, the API's `tz=`) finds no rollups of its days and computes the
period from the raw rows: right, only slower.

This module answers the grouped reports (NPS, agent against company, duration
buckets, the funnel); the rollups' SELECTs are in `storage.rollup_queries`,
their upkeep in `storage.rollup_refresh`, the responses list in
`storage.response_pages`, and the shared expressions in `storage.report_sql`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.nps import NpsSummary
from ivr.ports import (
    BucketNps,
    CellNps,
    Duration,
    FunnelCounts,
    Grouping,
    GroupNps,
    PairedNps,
    Period,
    ReportsUnavailable,
    Response,
    ResponseCursor,
    ResponseFilter,
    ResponsePage,
)
from storage.database import DatabaseError, database_errors
from storage.models import Base, DurationDaily, FunnelDaily, NpsDaily, RollupState
from storage.report_sql import (
    COMPLETED_STATUSES,
    COUNTS,
    DAY_GRAIN,
    EDGES,
    FUNNEL,
    HOLD_EDGES,
    MONTH_GRAIN,
    NO_NAME,
    OPEN_SURVEY_GRACE,
    PAIRED,
    SETTLE_DAYS,
    SETTLE_EVERY,
    TALK_EDGES,
    TOTAL_GRAIN,
    UNKNOWN_BUCKET,
    UTC_ZONE,
)
from storage.response_pages import read_responses, responses_csv
from storage.rollup_queries import RawRows, duration_raw, funnel_raw, nps_raw, rollup_source
from storage.rollup_refresh import refresh_rollups
from storage.scores import AGENT_QUESTION, COMPANY_QUESTION, QUESTIONS

__all__ = [
    "COMPLETED_STATUSES",
    "DAY_GRAIN",
    "HOLD_EDGES",
    "MONTH_GRAIN",
    "NO_NAME",
    "OPEN_SURVEY_GRACE",
    "SETTLE_DAYS",
    "SETTLE_EVERY",
    "TALK_EDGES",
    "TOTAL_GRAIN",
    "UNKNOWN_BUCKET",
    "DurationDaily",
    "FunnelDaily",
    "NpsDaily",
    "RollupState",
    "SqlReportReader",
]


def _summary(promoters: Any, passives: Any, detractors: Any) -> NpsSummary:
    return NpsSummary(promoters=int(promoters), passives=int(passives), detractors=int(detractors))


def _name(value: str | None) -> str | None:
    return None if value is None or value == NO_NAME else value


def _period_start(day: date, grouping: Grouping) -> date:
    if grouping is Grouping.WEEK:
        return day - timedelta(days=day.weekday())
    if grouping is Grouping.MONTH:
        return day.replace(day=1)
    return day


def _as_date(value: Any) -> date:
    """A day column's value: a date, or the ISO text SQLite hands back from a UNION."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _add(left: NpsSummary, right: NpsSummary) -> NpsSummary:
    return NpsSummary(
        promoters=left.promoters + right.promoters,
        passives=left.passives + right.passives,
        detractors=left.detractors + right.detractors,
    )


def _question_order(question: str) -> int:
    return QUESTIONS.index(question) if question in QUESTIONS else len(QUESTIONS)


class SqlReportReader:
    """`ivr.ports.ReportReader` on SQLAlchemy async, for SQLite and PostgreSQL."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle_days: int = SETTLE_DAYS,
        zone: ZoneInfo = UTC_ZONE,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._settle_days = settle_days
        # `zone`: the days the rollups are kept in; `_read_zone`: the days read.
        self._zone = zone
        self._read_zone = zone

    @property
    def zone(self) -> ZoneInfo:
        """The zone whose days this reader's periods and groups are."""
        return self._read_zone

    def in_zone(self, zone: ZoneInfo) -> SqlReportReader:
        """The same reader for periods of `zone`'s days; the rollups it
        refreshes stay in the configured zone."""
        other = SqlReportReader(
            self._sessions, clock=self._clock, settle_days=self._settle_days, zone=self._zone
        )
        other._read_zone = zone
        return other

    @asynccontextmanager
    async def _reading(self, action: str) -> AsyncIterator[AsyncSession]:
        """A session whose database failures surface as the port's exception."""
        try:
            async with database_errors(action), self._sessions() as session:
                if self._dialect(session) == "postgresql":
                    # Reports are many short queries whose cost estimates cross
                    # PostgreSQL's JIT threshold: compiling them costs more
                    # (~40 ms each, measured) than it ever saves here.
                    await session.execute(sa.text("SET LOCAL jit = off"))
                yield session
        except DatabaseError as error:
            raise ReportsUnavailable(str(error)) from error

    @staticmethod
    def _dialect(session: AsyncSession) -> str:
        return session.get_bind().dialect.name

    async def _source(
        self,
        session: AsyncSession,
        model: type[Base],
        raw: RawRows,
        period: Period,
        *,
        stored_grain: str = DAY_GRAIN,
        months: bool = True,
    ) -> sa.Subquery:
        return await rollup_source(
            session,
            model,
            raw,
            period,
            self._read_zone,
            stored_grain=stored_grain,
            months=months,
        )

    async def nps(
        self,
        period: Period,
        grouping: Grouping,
        *,
        agent: str | None = None,
        queue: str | None = None,
    ) -> Sequence[GroupNps]:
        """Day, week and month come from one GROUP BY day, folded here: at most a
        few thousand rows, and the week and month arithmetic stays portable."""
        by_name = grouping in (Grouping.AGENT, Grouping.QUEUE)
        unfiltered = agent is None and queue is None
        async with self._reading("compute the NPS report") as session:
            rows = await self._source(
                session,
                NpsDaily,
                nps_raw,
                period,
                stored_grain=TOTAL_GRAIN if unfiltered and not by_name else DAY_GRAIN,
                months=grouping not in (Grouping.DAY, Grouping.WEEK),
            )
            keys = {
                Grouping.ALL: [],
                Grouping.AGENT: [rows.c.agent],
                Grouping.QUEUE: [rows.c.queue],
            }.get(grouping, [rows.c.day])
            statement = (
                sa.select(*keys, rows.c.question, *(sa.func.sum(rows.c[name]) for name in COUNTS))
                .where(*self._filters(rows, agent=agent, queue=queue))
                .group_by(*keys, rows.c.question)
            )
            found = [
                ((row[0] if keys else None), *row[len(keys) :])
                for row in await session.execute(statement)
            ]
        totals: dict[tuple[str | None, str], NpsSummary] = {}
        by_day = grouping in (Grouping.DAY, Grouping.WEEK, Grouping.MONTH)
        for group, question, *counts in found:
            name = _period_start(_as_date(group), grouping).isoformat() if by_day else _name(group)
            summary = _summary(*counts)
            previous = totals.get((name, question))
            totals[(name, question)] = summary if previous is None else _add(previous, summary)
        ordered = sorted(
            totals.items(),
            key=lambda item: (item[0][0] is None, item[0][0] or "", _question_order(item[0][1])),
        )
        return [
            GroupNps(group=name, question=question, summary=summary)
            for (name, question), summary in ordered
        ]

    @staticmethod
    def _filters(
        rows: sa.Subquery, *, agent: str | None = None, queue: str | None = None
    ) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if agent is not None:
            conditions.append(rows.c.agent == agent)
        if queue is not None:
            conditions.append(rows.c.queue == queue)
        return conditions

    async def nps_by_agent_and_queue(self, period: Period) -> Sequence[CellNps]:
        async with self._reading("compute the NPS per agent and queue") as session:
            rows = await self._source(session, NpsDaily, nps_raw, period)
            statement = sa.select(
                rows.c.agent,
                rows.c.queue,
                rows.c.question,
                *(sa.func.sum(rows.c[name]) for name in COUNTS),
            ).group_by(rows.c.agent, rows.c.queue, rows.c.question)
            found = (await session.execute(statement)).all()
        cells = [
            CellNps(
                agent=_name(agent), queue=_name(queue), question=question, summary=_summary(*counts)
            )
            for agent, queue, question, *counts in found
        ]
        cells.sort(
            key=lambda cell: (cell.agent or "", cell.queue or "", _question_order(cell.question))
        )
        return cells

    async def agent_vs_company(
        self, period: Period, *, queue: str | None = None
    ) -> Sequence[PairedNps]:
        async with self._reading("compare agent and company NPS") as session:
            rows = await self._source(session, NpsDaily, nps_raw, period)
            statement = (
                sa.select(
                    rows.c.agent, rows.c.question, *(sa.func.sum(rows.c[name]) for name in PAIRED)
                )
                .where(*self._filters(rows, queue=queue))
                .group_by(rows.c.agent, rows.c.question)
            )
            found = (await session.execute(statement)).all()
        by_agent: dict[str | None, dict[str, NpsSummary]] = {}
        for agent, question, *counts in found:
            by_agent.setdefault(_name(agent), {})[question] = _summary(*counts)
        empty = NpsSummary(promoters=0, passives=0, detractors=0)
        paired = [
            PairedNps(
                agent=agent,
                agent_question=questions.get(AGENT_QUESTION, empty),
                company_question=questions.get(COMPANY_QUESTION, empty),
            )
            for agent, questions in by_agent.items()
        ]
        paired = [entry for entry in paired if entry.agent_question.n > 0]
        paired.sort(key=lambda entry: (entry.agent is None, entry.agent or ""))
        return paired

    async def nps_by_duration(
        self, period: Period, measure: Duration, *, queue: str | None = None
    ) -> Sequence[BucketNps]:
        edges = EDGES[measure]
        async with self._reading(f"compute the NPS by {measure.value} time") as session:
            rows = await self._source(session, DurationDaily, duration_raw, period)
            statement = (
                sa.select(
                    rows.c.bucket, rows.c.question, *(sa.func.sum(rows.c[name]) for name in COUNTS)
                )
                .where(rows.c.measure == measure.value, *self._filters(rows, queue=queue))
                .group_by(rows.c.bucket, rows.c.question)
            )
            found = (await session.execute(statement)).all()
        buckets = []
        for bucket, question, *counts in found:
            index = int(bucket)
            if index == UNKNOWN_BUCKET:
                low, high = None, None
            else:
                low = edges[index]
                high = edges[index + 1] if index + 1 < len(edges) else None
            buckets.append(
                BucketNps(
                    measure=measure,
                    low=low,
                    high=high,
                    question=question,
                    summary=_summary(*counts),
                )
            )
        buckets.sort(
            key=lambda entry: (entry.low is None, entry.low or 0, _question_order(entry.question))
        )
        return buckets

    async def funnel(self, period: Period) -> Sequence[FunnelCounts]:
        async with self._reading("compute the survey funnel") as session:
            rows = await self._source(session, FunnelDaily, funnel_raw, period)
            statement = sa.select(
                rows.c.agent, rows.c.queue, *(sa.func.sum(rows.c[name]) for name in FUNNEL)
            ).group_by(rows.c.agent, rows.c.queue)
            found = (await session.execute(statement)).all()
        counts = [
            FunnelCounts(
                agent=_name(agent),
                queue=_name(queue),
                handled=int(handled),
                eligible=int(eligible),
                offered=int(offered),
                started=int(started),
                completed=int(completed),
            )
            for agent, queue, handled, eligible, offered, started, completed in found
        ]
        counts.sort(
            key=lambda entry: (
                entry.agent is None,
                entry.agent or "",
                entry.queue is None,
                entry.queue or "",
            )
        )
        return counts

    async def responses(
        self, filters: ResponseFilter, *, after: ResponseCursor | None, limit: int
    ) -> ResponsePage:
        """Keyset pagination on (started_at, id): a page deep in five million rows
        costs what the first one does, where OFFSET would read every row before it."""
        if limit < 1:
            raise ValueError(f"limit {limit} must be at least 1")
        async with self._reading("list the survey responses") as session:
            return await read_responses(
                session, filters, after=after, limit=limit, zone=self._read_zone
            )

    def responses_csv(self, rows: Sequence[Response], *, header: bool) -> str:
        """The export's escaping (storage.reports), so both CSVs are equally safe."""
        return responses_csv(rows, header=header)

    async def refresh(self, *, full: bool = False) -> None:
        """See `storage.rollup_refresh.refresh_rollups`."""
        try:
            await refresh_rollups(
                self._sessions,
                self._clock(),
                settle_days=self._settle_days,
                full=full,
                zone=self._zone,
            )
        except DatabaseError as error:
            raise ReportsUnavailable(str(error)) from error
