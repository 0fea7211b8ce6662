"""The SQL behind the reports API and dashboard (`ivr.ports.ReportReader`).

Why rollups: with millions of surveys, a GROUP BY over the raw answers reads
every answer of the period (seconds on PostgreSQL, even for a month), while a
manager's screen needs an answer in well under a second. Three small tables
keep counts per UTC day and group - (agent, queue, question), (queue, question,
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

Times: days are UTC days of the survey's start (of the call's start for the
funnel's handled and eligible steps), the clock the rest of the schema keeps.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from ivr.core.domain import SurveyStatus
from ivr.core.nps import MAX_SCORE, MIN_SCORE, Category, NpsSummary, classify
from ivr.ports import (
    RESPONSE_FIELDS,
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
from storage.extras import any_answered, survey_extras
from storage.models import (
    Base,
    Call,
    DurationDaily,
    FunnelDaily,
    NpsDaily,
    RollupState,
    Survey,
    SurveyAnswer,
)
from storage.reports import AGENT_QUESTION, COMPANY_QUESTION, QUESTIONS, csv_cell

# A missing agent or queue is stored as '' in the rollups: their key columns are
# part of a primary key and cannot be NULL. It is turned back into None on read.
NO_NAME = ""
# Bucket edges in seconds: bucket i is [EDGES[i], EDGES[i+1]), the last is open.
HOLD_EDGES: tuple[int, ...] = (0, 30, 60, 120, 300, 600)
TALK_EDGES: tuple[int, ...] = (0, 60, 180, 300, 600, 1200)
UNKNOWN_BUCKET = -1
# Surveys that started this recently may still be running: never rolled up.
OPEN_SURVEY_GRACE = timedelta(minutes=10)
# Days before the cut-off's day recomputed every SETTLE_EVERY, for late arrivals.
SETTLE_DAYS = 2
SETTLE_EVERY = timedelta(hours=1)
DAY_GRAIN = "day"
MONTH_GRAIN = "month"
TOTAL_GRAIN = "total"
# Statuses that count as a completed survey in the funnel (with >= 1 answer).
COMPLETED_STATUSES = (
    SurveyStatus.COMPLETED.value,
    SurveyStatus.PARTIAL.value,
    SurveyStatus.INTERRUPTED.value,
)
_EDGES = {Duration.HOLD: HOLD_EDGES, Duration.TALK: TALK_EDGES}
_COUNTS = ("promoters", "passives", "detractors")
_CATEGORIES = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)
_PAIRED = ("paired_promoters", "paired_passives", "paired_detractors")
_FUNNEL = ("handled", "eligible", "offered", "started", "completed")
_CSV_FIELDS = RESPONSE_FIELDS


# --- Expressions ------------------------------------------------------------------------
#
# Everything that appears in a GROUP BY is written without bound parameters:
# PostgreSQL matches a grouped expression by its text, and two renderings of
# coalesce(x, $1) and coalesce(x, $2) are different expressions to it.


_Select = sa.Select[*tuple[Any, ...]]
_Compound = sa.CompoundSelect[*tuple[Any, ...]]
_Query = _Select | _Compound


def _constant(sql: str, type_: Any) -> sa.ColumnElement[Any]:
    return sa.literal_column(sql, type_)


_DAY_GRAIN = _constant(f"'{DAY_GRAIN}'", sa.String)
_MONTH_GRAIN = _constant(f"'{MONTH_GRAIN}'", sa.String)
_TOTAL_GRAIN = _constant(f"'{TOTAL_GRAIN}'", sa.String)


def _month(dialect: str, day: Any) -> sa.ColumnElement[date]:
    """The first day of `day`'s month (day minus its day-of-month, plus one)."""
    if dialect == "postgresql":
        offset = sa.cast(sa.extract("day", day), sa.Integer) - _constant("1", sa.Integer)
        return sa.type_coerce(day - offset, sa.Date)
    return sa.type_coerce(sa.func.date(day, _constant("'start of month'", sa.Text)), sa.Date)


def _day(dialect: str, moment: Any) -> sa.ColumnElement[date]:
    """The UTC calendar day of a stored timestamp, in both dialects.

    SQLite stores UTC text ("2025-03-03 09:00:00.000000"), so date() is the UTC day;
    PostgreSQL stores timestamptz, which must be read in UTC, not the session's zone.
    """
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(_constant("'UTC'", sa.Text), moment), sa.Date)
    return sa.type_coerce(sa.func.date(moment), sa.Date)


def _named(column: Any) -> sa.ColumnElement[str]:
    return sa.func.coalesce(column, _constant("''", sa.Text))


def _scores(category: Category) -> list[int]:
    return [score for score in range(MIN_SCORE, MAX_SCORE + 1) if classify(score) is category]


def _in_category(value: Any, category: Category) -> sa.ColumnElement[bool]:
    """value IN (...) with the scores of `category` as `ivr.core.nps.classify` defines them."""
    condition: sa.ColumnElement[bool] = value.in_(_scores(category))
    return condition


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    one, zero = _constant("1", sa.Integer), _constant("0", sa.Integer)
    return sa.func.coalesce(sa.func.sum(sa.case((condition, one), else_=zero)), zero)


def _bucket(seconds: Any, edges: Sequence[int]) -> sa.ColumnElement[int]:
    """The index of the bucket `seconds` falls in, UNKNOWN_BUCKET when NULL."""
    whens: list[tuple[sa.ColumnElement[bool], sa.ColumnElement[int]]] = [
        (seconds.is_(None), _constant(str(UNKNOWN_BUCKET), sa.SmallInteger))
    ]
    for index in range(len(edges) - 1, 0, -1):
        whens.append(
            (
                seconds >= _constant(str(edges[index]), sa.Integer),
                _constant(str(index), sa.SmallInteger),
            )
        )
    return sa.case(*whens, else_=_constant("0", sa.SmallInteger))


def _eligible(call: type[Call]) -> sa.ColumnElement[bool]:
    """Which handled calls the survey policy decided to survey (ivr.core.policy).

    Exactly `policy_decision = 'eligible'`. Calls stored before migration 0004
    were never decided; that migration gave them the decision the reports used
    to derive (an agent answered, not abandoned, not ended by the caller), so
    their past figures are unchanged and no query has to tell old rows apart.
    """
    return call.policy_decision == _constant("'eligible'", sa.Text)


def _completed(survey: type[Survey]) -> sa.ColumnElement[bool]:
    """The survey ended completed or partial and holds at least one score."""
    answered = (
        sa.select(SurveyAnswer.id)
        .where(SurveyAnswer.survey_id == survey.id, SurveyAnswer.value.is_not(None))
        .exists()
    )
    return sa.and_(survey.status.in_(COMPLETED_STATUSES), answered)


def _between(
    moment: Any, low: datetime | None, high: datetime | None
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if low is not None:
        conditions.append(moment >= low)
    if high is not None:
        conditions.append(moment < high)
    return conditions


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


# --- The per-day SELECTs: they fill the rollups and compute the tail ---------------------


def _nps_raw(dialect: str, low: datetime | None, high: datetime | None) -> _Select:
    answer = aliased(SurveyAnswer, name="answer")
    other = aliased(SurveyAnswer, name="other")
    day = _day(dialect, Survey.started_at)
    agent, queue = _named(Call.agent_name), _named(Call.queue)
    other_question = sa.case(
        (
            answer.question == _constant(f"'{AGENT_QUESTION}'", sa.Text),
            _constant(f"'{COMPANY_QUESTION}'", sa.Text),
        ),
        else_=_constant(f"'{AGENT_QUESTION}'", sa.Text),
    )
    paired = other.value.is_not(None)
    categories = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)
    return (
        sa.select(
            _DAY_GRAIN.label("grain"),
            day.label("day"),
            agent.label("agent"),
            queue.label("queue"),
            answer.question.label("question"),
            *(
                _count_if(_in_category(answer.value, category)).label(name)
                for name, category in zip(_COUNTS, categories, strict=True)
            ),
            *(
                _count_if(sa.and_(_in_category(answer.value, category), paired)).label(name)
                for name, category in zip(_PAIRED, categories, strict=True)
            ),
        )
        .select_from(answer)
        .join(Survey, Survey.id == answer.survey_id)
        .join(Call, Call.id == Survey.call_id)
        .outerjoin(
            other, sa.and_(other.survey_id == answer.survey_id, other.question == other_question)
        )
        .where(
            answer.value.is_not(None),
            answer.question.in_(QUESTIONS),
            *_between(Survey.started_at, low, high),
        )
        .group_by(day, agent, queue, answer.question)
    )


def _duration_raw(dialect: str, low: datetime | None, high: datetime | None) -> _Compound:
    day = _day(dialect, Survey.started_at)
    queue = _named(Call.queue)
    categories = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)
    parts = []
    for measure, seconds in (
        (Duration.HOLD, Call.hold_seconds),
        (Duration.TALK, Call.talk_seconds),
    ):
        bucket = _bucket(seconds, _EDGES[measure])
        parts.append(
            sa.select(
                _DAY_GRAIN.label("grain"),
                day.label("day"),
                queue.label("queue"),
                SurveyAnswer.question.label("question"),
                _constant(f"'{measure.value}'", sa.String).label("measure"),
                bucket.label("bucket"),
                *(
                    _count_if(_in_category(SurveyAnswer.value, category)).label(name)
                    for name, category in zip(_COUNTS, categories, strict=True)
                ),
            )
            .select_from(SurveyAnswer)
            .join(Survey, Survey.id == SurveyAnswer.survey_id)
            .join(Call, Call.id == Survey.call_id)
            .where(
                SurveyAnswer.value.is_not(None),
                SurveyAnswer.question.in_(QUESTIONS),
                *_between(Survey.started_at, low, high),
            )
            .group_by(day, queue, SurveyAnswer.question, bucket)
        )
    return sa.union_all(*parts)


def _funnel_raw(dialect: str, low: datetime | None, high: datetime | None) -> _Select:
    """Calls counted on the day the call started, surveys on the day they started."""
    zero = _constant("0", sa.Integer)
    call_day = _day(dialect, Call.started_at)
    call_agent, call_queue = _named(Call.agent_name), _named(Call.queue)
    calls = (
        sa.select(
            _DAY_GRAIN.label("grain"),
            call_day.label("day"),
            call_agent.label("agent"),
            call_queue.label("queue"),
            _count_if(Call.agent_name.is_not(None)).label("handled"),
            _count_if(_eligible(Call)).label("eligible"),
            zero.label("offered"),
            zero.label("started"),
            zero.label("completed"),
        )
        .where(Call.started_at.is_not(None), *_between(Call.started_at, low, high))
        .group_by(call_day, call_agent, call_queue)
    )
    survey_day = _day(dialect, Survey.started_at)
    survey_agent, survey_queue = _named(Call.agent_name), _named(Call.queue)
    surveys = (
        sa.select(
            _DAY_GRAIN.label("grain"),
            survey_day.label("day"),
            survey_agent.label("agent"),
            survey_queue.label("queue"),
            zero.label("handled"),
            zero.label("eligible"),
            sa.func.count().label("offered"),
            sa.func.count().label("started"),
            _count_if(_completed(Survey)).label("completed"),
        )
        .select_from(Survey)
        .join(Call, Call.id == Survey.call_id)
        .where(*_between(Survey.started_at, low, high))
        .group_by(survey_day, survey_agent, survey_queue)
    )
    both = sa.union_all(calls, surveys).subquery("funnel_parts")
    return sa.select(
        both.c.grain,
        both.c.day,
        both.c.agent,
        both.c.queue,
        *(sa.func.sum(both.c[name]).label(name) for name in _FUNNEL),
    ).group_by(both.c.grain, both.c.day, both.c.agent, both.c.queue)


_Raw = Callable[[str, datetime | None, datetime | None], _Query]
_ROLLUPS: tuple[tuple[type[Base], _Raw], ...] = (
    (NpsDaily, _nps_raw),
    (DurationDaily, _duration_raw),
    (FunnelDaily, _funnel_raw),
)
_WITH_TOTALS = (NpsDaily,)


def _table(model: type[Base]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _stored(table: sa.Table, grain: str, first: date, end: date) -> _Select:
    return sa.select(*table.c).where(
        table.c.grain == grain, table.c.day >= first, table.c.day < end
    )


def _rows(
    dialect: str,
    model: type[Base],
    raw: _Raw,
    period: Period,
    cutoff: datetime | None,
    *,
    stored_grain: str = DAY_GRAIN,
    months: bool = True,
) -> sa.Subquery:
    """Rows of one rollup covering the period, all with the same columns: month
    rows for whole months (when `months`), `stored_grain` rows for the other days
    before the cut-off (its own day partly), raw rows from the cut-off on."""
    table = _table(model)
    end = period.last + timedelta(days=1)
    parts: list[_Query] = []
    if cutoff is None:
        return raw(dialect, _midnight(period.first), _midnight(end)).subquery("rows")
    cutoff_day = cutoff.astimezone(UTC).date()
    stored_end = min(end, cutoff_day + timedelta(days=1))
    if period.first < stored_end:
        months_first = period.first if period.first.day == 1 else _next_month(period.first)
        months_end = min(_month_start(stored_end), _month_start(cutoff_day))
        if months and months_first < months_end:
            parts.append(_stored(table, MONTH_GRAIN, months_first, months_end))
            if period.first < months_first:
                parts.append(_stored(table, stored_grain, period.first, months_first))
            if months_end < stored_end:
                parts.append(_stored(table, stored_grain, months_end, stored_end))
        else:
            parts.append(_stored(table, stored_grain, period.first, stored_end))
    if cutoff < _midnight(end):
        parts.append(_flat(raw(dialect, max(_midnight(period.first), cutoff), _midnight(end))))
    if len(parts) == 1:
        return parts[0].subquery("rows")
    return sa.union_all(*parts).subquery("rows")


def _flat(query: _Query) -> _Query:
    """A UNION as a plain SELECT from it: SQLite cannot nest a parenthesised
    UNION inside another UNION."""
    if isinstance(query, sa.Select):
        return query
    inner = query.subquery("computed")
    return sa.select(*inner.c)


def _totals(table: sa.Table, first: date | None) -> _Select:
    """Per-day rows of every agent and queue together (agent and queue ''): a
    trend over a year reads one row per day and question instead of hundreds."""
    nameless = _constant("''", sa.Text)
    counts = [column for column in table.c if not column.primary_key]
    return (
        sa.select(
            _TOTAL_GRAIN.label("grain"),
            table.c.day,
            nameless.label("agent"),
            nameless.label("queue"),
            table.c.question,
            *(sa.func.sum(column).label(column.name) for column in counts),
        )
        .where(table.c.grain == DAY_GRAIN, *(() if first is None else (table.c.day >= first,)))
        .group_by(table.c.day, table.c.question)
    )


def _monthly(dialect: str, table: sa.Table, first: date | None, end: date) -> _Select:
    """Month rows summed from the day rows of the months in [first, end)."""
    month = _month(dialect, table.c.day)
    keys = [
        column for column in table.c if column.primary_key and column.name not in ("grain", "day")
    ]
    counts = [column for column in table.c if not column.primary_key]
    return (
        sa.select(
            _MONTH_GRAIN.label("grain"),
            month.label("day"),
            *keys,
            *(sa.func.sum(column).label(column.name) for column in counts),
        )
        .where(
            table.c.grain == DAY_GRAIN,
            table.c.day < end,
            *(() if first is None else (table.c.day >= first,)),
        )
        .group_by(month, *keys)
    )


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


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one refresh recomputes: day rows from `start` (None: all) to `cutoff`."""

    previous: datetime | None
    settled: datetime | None
    cutoff: datetime
    settle: bool
    start: date | None


def _plan(
    now: datetime,
    previous: datetime | None,
    settled: datetime | None,
    settle_days: int,
    full: bool,
) -> _Plan:
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
    return _Plan(previous=previous, settled=settled, cutoff=cutoff, settle=settle, start=start)


class SqlReportReader:
    """`ivr.ports.ReportReader` on SQLAlchemy async, for SQLite and PostgreSQL."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle_days: int = SETTLE_DAYS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._settle_days = settle_days

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

    async def _cutoff(self, session: AsyncSession) -> datetime | None:
        """Read in its own statement: a refresh commits the rollups and the cut-off
        together, and a later statement never sees older rollups than this one."""
        value: datetime | None = (
            await session.execute(sa.select(RollupState.complete_before).where(RollupState.id == 1))
        ).scalar_one_or_none()
        return value

    async def _source(
        self,
        session: AsyncSession,
        model: type[Base],
        raw: _Raw,
        period: Period,
        *,
        stored_grain: str = DAY_GRAIN,
        months: bool = True,
    ) -> sa.Subquery:
        cutoff = await self._cutoff(session)
        return _rows(
            self._dialect(session),
            model,
            raw,
            period,
            cutoff,
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
                _nps_raw,
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
                sa.select(*keys, rows.c.question, *(sa.func.sum(rows.c[name]) for name in _COUNTS))
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
            rows = await self._source(session, NpsDaily, _nps_raw, period)
            statement = sa.select(
                rows.c.agent,
                rows.c.queue,
                rows.c.question,
                *(sa.func.sum(rows.c[name]) for name in _COUNTS),
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
            rows = await self._source(session, NpsDaily, _nps_raw, period)
            statement = (
                sa.select(
                    rows.c.agent, rows.c.question, *(sa.func.sum(rows.c[name]) for name in _PAIRED)
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
        edges = _EDGES[measure]
        async with self._reading(f"compute the NPS by {measure.value} time") as session:
            rows = await self._source(session, DurationDaily, _duration_raw, period)
            statement = (
                sa.select(
                    rows.c.bucket, rows.c.question, *(sa.func.sum(rows.c[name]) for name in _COUNTS)
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
            rows = await self._source(session, FunnelDaily, _funnel_raw, period)
            statement = sa.select(
                rows.c.agent, rows.c.queue, *(sa.func.sum(rows.c[name]) for name in _FUNNEL)
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
            agent_first = await self._agent_first(session, filters, limit)
            statement = self._responses_statement(
                filters, after=after, limit=limit, agent_first=agent_first
            )
            found = (await session.execute(statement)).all()
            extras = await survey_extras(session, [row[0] for row in found[:limit]])
        rows = tuple(
            Response(
                survey_id=row[0],
                started_at=row[1],
                status=SurveyStatus(row[2]),
                pbx=row[3],
                linkedid=row[4],
                caller_number=row[5],
                caller_name=row[6],
                queue=row[7],
                agent=row[8],
                hold_seconds=row[9],
                talk_seconds=row[10],
                agent_score=row[11],
                company_score=row[12],
                transferred=bool(row[13]),
                opted_in=row[14],
                initiated_by=row[15],
                **extras.get(row[0], {}),
            )
            for row in found[:limit]
        )
        following = None
        if len(found) > limit:
            last = rows[-1]
            following = ResponseCursor(started_at=last.started_at, survey_id=last.survey_id)
        return ResponsePage(rows=rows, next=following)

    def _responses_statement(
        self,
        filters: ResponseFilter,
        *,
        after: ResponseCursor | None,
        limit: int,
        agent_first: bool,
    ) -> _Select:
        """The page's surveys are found first, then their calls are read.

        Finding the page needs only the surveys, their two answers and (for an
        agent or queue filter) the call's agent and queue; the calls' other
        columns are read for the page's rows alone, so a search that visits
        thousands of candidates touches no more than the indexes it needs.
        """
        page = self._page_of_surveys(filters, after=after, limit=limit, agent_first=agent_first)
        calls = _table(Call)
        surveys = _table(Survey)
        return (
            sa.select(
                page.c.id,
                page.c.started_at,
                page.c.status,
                calls.c.pbx,
                calls.c.linkedid,
                calls.c.caller_number,
                calls.c.caller_name,
                calls.c.queue,
                calls.c.agent_name,
                calls.c.hold_seconds,
                calls.c.talk_seconds,
                page.c.agent_score,
                page.c.company_score,
                calls.c.transferred,
                surveys.c.opted_in,
                surveys.c.initiated_by,
            )
            .select_from(page)
            .join(calls, calls.c.id == page.c.call_id)
            .join(surveys, surveys.c.id == page.c.id)
            .order_by(page.c.started_at.desc(), page.c.id.desc())
        )

    def _page_of_surveys(
        self,
        filters: ResponseFilter,
        *,
        after: ResponseCursor | None,
        limit: int,
        agent_first: bool,
    ) -> sa.Subquery:
        agent_answer = aliased(SurveyAnswer, name="agent_answer")
        company_answer = aliased(SurveyAnswer, name="company_answer")
        statement = (
            sa.select(
                Survey.id,
                Survey.call_id,
                Survey.started_at,
                Survey.status,
                agent_answer.value.label("agent_score"),
                company_answer.value.label("company_score"),
            )
            .select_from(Survey)
            .outerjoin(
                agent_answer,
                sa.and_(
                    agent_answer.survey_id == Survey.id, agent_answer.question == AGENT_QUESTION
                ),
            )
            .outerjoin(
                company_answer,
                sa.and_(
                    company_answer.survey_id == Survey.id,
                    company_answer.question == COMPANY_QUESTION,
                ),
            )
            .where(
                *_between(
                    Survey.started_at,
                    _midnight(filters.period.first),
                    _midnight(filters.period.last + timedelta(days=1)),
                ),
            )
            .order_by(Survey.started_at.desc(), Survey.id.desc())
            .limit(limit + 1)
        )
        if filters.min_score is None and filters.max_score is None:
            # Surveys with any answer at all. One EXISTS rather than "an NPS
            # answer OR another one": PostgreSQL turns an EXISTS inside an OR
            # into a hash of every non-NPS answer, 300 ms on 5M surveys, where
            # this probes the (survey_id, question) index once per row walked.
            # A score range already keeps only surveys with an NPS answer.
            statement = statement.where(any_answered(Survey))
        if filters.agent is not None and agent_first:
            chosen = self._agent_calls(filters)
            statement = statement.join(chosen, chosen.c.id == Survey.call_id)
            if filters.queue is not None:
                statement = statement.where(
                    Survey.call_id.in_(
                        sa.select(Call.id).where(
                            Call.id == Survey.call_id, Call.queue == filters.queue
                        )
                    )
                )
        elif filters.agent is not None or filters.queue is not None:
            calls = _table(Call)
            statement = statement.join(calls, calls.c.id == Survey.call_id)
            if filters.agent is not None:
                statement = statement.where(calls.c.agent_name == filters.agent)
            if filters.queue is not None:
                statement = statement.where(calls.c.queue == filters.queue)
        scored = {
            AGENT_QUESTION: (agent_answer.value,),
            COMPANY_QUESTION: (company_answer.value,),
        }.get(filters.question or "", (agent_answer.value, company_answer.value))
        if filters.min_score is not None or filters.max_score is not None:
            statement = statement.where(
                sa.or_(
                    *(
                        self._in_range(value, filters.min_score, filters.max_score)
                        for value in scored
                    )
                )
            )
        if after is not None:
            statement = statement.where(
                Survey.started_at <= after.started_at,
                sa.or_(
                    Survey.started_at < after.started_at,
                    Survey.id < after.survey_id,
                ),
            )
        return statement.subquery("page")

    async def _agent_first(
        self, session: AsyncSession, filters: ResponseFilter, limit: int
    ) -> bool:
        """Whether to read the agent's calls first, estimated from the rollups.

        Walking all surveys newest first visits about limit * all answers /
        matching answers rows before the page is full; reading the agent's calls
        first visits every answer of the agent in the period. The rollups give
        both counts in a few milliseconds (a score range inside a category is
        taken as its share of that category's scores).
        """
        if filters.agent is None or (filters.min_score is None and filters.max_score is None):
            return False
        rows = await self._source(session, NpsDaily, _nps_raw, filters.period)
        questions = [filters.question] if filters.question else list(QUESTIONS)
        low = MIN_SCORE if filters.min_score is None else filters.min_score
        high = MAX_SCORE if filters.max_score is None else filters.max_score
        mine = rows.c.agent == filters.agent
        shares = [
            sum(1 for score in _scores(category) if low <= score <= high) / len(_scores(category))
            for category in _CATEGORIES
        ]
        answered = rows.c.promoters + rows.c.passives + rows.c.detractors
        statement = sa.select(
            sa.func.sum(answered),
            sa.func.sum(sa.case((mine, answered), else_=0)),
            *(sa.func.sum(sa.case((mine, rows.c[name]), else_=0)) for name in _COUNTS),
        ).where(rows.c.question.in_(questions))
        total, agent_total, *agent_counts = (await session.execute(statement)).one()
        matches = sum(
            float(count or 0) * share for count, share in zip(agent_counts, shares, strict=True)
        )
        walk = float(total or 0) if matches < 1 else limit * float(total or 0) / matches
        return float(agent_total or 0) < walk

    @staticmethod
    def _agent_calls(filters: ResponseFilter) -> sa.CTE:
        """The ids of the agent's calls of the period, read before anything else.

        Newest first with a LIMIT, the planner walks the surveys by start time
        and checks each call; that finds an agent's 50 latest responses quickly,
        but for a rare match (an agent's zeros) it walks the whole period. Then
        the agent's calls of the period (a call with no start time too) are the
        smaller set: MATERIALIZED makes both databases read them first. Only ids
        are taken, so PostgreSQL answers from the covering indexes of migration
        0003 (calls, then surveys, then answers) without a heap page per row;
        the calls' other columns are read for the page's rows alone.
        """
        calls = _table(Call)
        # A survey starts after its call; a day of slack covers the longest call.
        low = _midnight(filters.period.first) - timedelta(days=1)
        high = _midnight(filters.period.last + timedelta(days=1))
        agents = calls.c.agent_name == filters.agent
        # Two SELECTs rather than an OR, so each can use the (agent, start) index.
        chosen = sa.union_all(
            sa.select(calls.c.id).where(
                agents, calls.c.started_at >= low, calls.c.started_at < high
            ),
            sa.select(calls.c.id).where(agents, calls.c.started_at.is_(None)),
        )
        return chosen.cte("chosen_calls").prefix_with("MATERIALIZED")

    @staticmethod
    def _in_range(value: Any, low: int | None, high: int | None) -> sa.ColumnElement[bool]:
        conditions = [value.is_not(None)]
        if low is not None:
            conditions.append(value >= low)
        if high is not None:
            conditions.append(value <= high)
        return sa.and_(*conditions)

    @staticmethod
    async def _recompute(
        session: AsyncSession,
        dialect: str,
        table: sa.Table,
        raw: _Raw,
        *,
        plan: _Plan,
        rows: list[dict[str, Any]] | None,
    ) -> None:
        """Day rows from the plan's start (None: all) up to its cut-off: the rows
        given, or computed by the database itself when None."""
        delete = sa.delete(table).where(table.c.grain == DAY_GRAIN)
        if plan.start is not None:
            delete = delete.where(table.c.day >= plan.start)
        await session.execute(delete)
        if rows is None:
            low = None if plan.start is None else _midnight(plan.start)
            columns = [column.name for column in table.c]
            computed = raw(dialect, low, plan.cutoff)
            await session.execute(sa.insert(table).from_select(columns, computed))
        elif rows:
            await session.execute(sa.insert(table), rows)

    @staticmethod
    async def _recompute_months(
        session: AsyncSession,
        dialect: str,
        table: sa.Table,
        start: date | None,
        closed_months: date,
    ) -> None:
        """Month rows of the months from `start`'s up to the cut-off's (excluded)."""
        first = None if start is None else _month_start(start)
        delete = sa.delete(table).where(table.c.grain == MONTH_GRAIN)
        if first is not None:
            delete = delete.where(table.c.day >= first)
        await session.execute(delete)
        if first is None or first < closed_months:
            columns = [column.name for column in table.c]
            monthly = _monthly(dialect, table, first, closed_months)
            await session.execute(sa.insert(table).from_select(columns, monthly))

    @staticmethod
    async def _recompute_totals(session: AsyncSession, table: sa.Table, start: date | None) -> None:
        """Total rows of the days from `start` (None: all), from their day rows."""
        delete = sa.delete(table).where(table.c.grain == TOTAL_GRAIN)
        if start is not None:
            delete = delete.where(table.c.day >= start)
        await session.execute(delete)
        columns = [column.name for column in table.c]
        await session.execute(sa.insert(table).from_select(columns, _totals(table, start)))

    def responses_csv(self, rows: Sequence[Response], *, header: bool) -> str:
        """The export's escaping (storage.reports), so both CSVs are equally safe."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if header:
            writer.writerow(_CSV_FIELDS)
        for row in rows:
            writer.writerow([csv_cell(getattr(row, name)) for name in _CSV_FIELDS])
        return buffer.getvalue()

    async def refresh(self, *, full: bool = False) -> None:
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
        now = self._clock()
        try:
            computed: dict[str, list[dict[str, Any]]] | None = None
            expected: _Plan | None = None
            async with database_errors("refresh the report rollups"), self._sessions() as session:
                if self._dialect(session) == "sqlite":
                    expected = _plan(now, *await self._state(session), self._settle_days, full)
                    computed = {}
                    for model, raw in _ROLLUPS:
                        low = None if expected.start is None else _midnight(expected.start)
                        result = await session.execute(raw("sqlite", low, expected.cutoff))
                        computed[model.__tablename__] = [dict(row._mapping) for row in result]
            async with (
                database_errors("refresh the report rollups"),
                self._sessions.begin() as session,
            ):
                await self._claim(session, now)
                plan = _plan(now, *await self._state(session, lock=True), self._settle_days, full)
                if expected is not None and plan != expected:
                    return
                dialect = self._dialect(session)
                closed_months = _month_start(plan.cutoff.astimezone(UTC).date())
                for model, raw in _ROLLUPS:
                    table = _table(model)
                    rows = None if computed is None else computed[model.__tablename__]
                    await self._recompute(session, dialect, table, raw, plan=plan, rows=rows)
                    await self._recompute_months(session, dialect, table, plan.start, closed_months)
                    if model in _WITH_TOTALS:
                        await self._recompute_totals(session, table, plan.start)
                await session.execute(
                    sa.update(RollupState)
                    .where(RollupState.id == 1)
                    .values(
                        complete_before=plan.cutoff,
                        settled_at=now if plan.settle else plan.settled,
                        refreshed_at=now,
                    )
                )
        except DatabaseError as error:
            raise ReportsUnavailable(str(error)) from error

    @staticmethod
    async def _claim(session: AsyncSession, now: datetime) -> None:
        """Write the state row first thing (created if missing): see `refresh`."""
        state = _table(RollupState)
        insert = (
            postgresql.insert
            if SqlReportReader._dialect(session) == "postgresql"
            else sqlite.insert
        )
        await session.execute(
            insert(state)
            .values(id=1, complete_before=None, settled_at=None, refreshed_at=now)
            .on_conflict_do_nothing(index_elements=[state.c.id])
        )

    @staticmethod
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
