"""The per-day SELECTs behind every report, and how a period's rows are assembled.

One SELECT per rollup both fills the rollup table and computes, at query time,
whatever started after the cut-off (see `storage.analytics`), so the stored and
the live counts cannot disagree. `rollup_rows` stitches month, day and live
rows into one subquery that the readers group as they need.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ivr.core.nps import Category
from ivr.ports import Duration, Period
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
from storage.report_sql import (
    COUNTS,
    DAY_GRAIN,
    DAY_GRAIN_SQL,
    EDGES,
    FUNNEL,
    MONTH_GRAIN,
    MONTH_GRAIN_SQL,
    PAIRED,
    TOTAL_GRAIN_SQL,
    AnyCompound,
    AnyQuery,
    between,
    bucket_of,
    constant,
    count_if,
    day_of,
    in_category,
    is_completed,
    is_eligible,
    midnight,
    month_of,
    month_start,
    named,
    next_month,
    table_of,
)
from storage.scores import AGENT_QUESTION, COMPANY_QUESTION, QUESTIONS, AnySelect

# --- The per-day SELECTs: they fill the rollups and compute the tail ---------------------


def nps_raw(dialect: str, low: datetime | None, high: datetime | None, zone: ZoneInfo) -> AnySelect:
    answer = aliased(SurveyAnswer, name="answer")
    other = aliased(SurveyAnswer, name="other")
    day = day_of(dialect, Survey.started_at, zone)
    agent, queue = named(Call.agent_name), named(Call.queue)
    other_question = sa.case(
        (
            answer.question == constant(f"'{AGENT_QUESTION}'", sa.Text),
            constant(f"'{COMPANY_QUESTION}'", sa.Text),
        ),
        else_=constant(f"'{AGENT_QUESTION}'", sa.Text),
    )
    paired = other.value.is_not(None)
    categories = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)
    return (
        sa.select(
            DAY_GRAIN_SQL.label("grain"),
            day.label("day"),
            agent.label("agent"),
            queue.label("queue"),
            answer.question.label("question"),
            *(
                count_if(in_category(answer.value, category)).label(name)
                for name, category in zip(COUNTS, categories, strict=True)
            ),
            *(
                count_if(sa.and_(in_category(answer.value, category), paired)).label(name)
                for name, category in zip(PAIRED, categories, strict=True)
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
            *between(Survey.started_at, low, high),
        )
        .group_by(day, agent, queue, answer.question)
    )


def duration_raw(
    dialect: str, low: datetime | None, high: datetime | None, zone: ZoneInfo
) -> AnyCompound:
    day = day_of(dialect, Survey.started_at, zone)
    queue = named(Call.queue)
    categories = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)
    parts = []
    for measure, seconds in (
        (Duration.HOLD, Call.hold_seconds),
        (Duration.TALK, Call.talk_seconds),
    ):
        bucket = bucket_of(seconds, EDGES[measure])
        parts.append(
            sa.select(
                DAY_GRAIN_SQL.label("grain"),
                day.label("day"),
                queue.label("queue"),
                SurveyAnswer.question.label("question"),
                constant(f"'{measure.value}'", sa.String).label("measure"),
                bucket.label("bucket"),
                *(
                    count_if(in_category(SurveyAnswer.value, category)).label(name)
                    for name, category in zip(COUNTS, categories, strict=True)
                ),
            )
            .select_from(SurveyAnswer)
            .join(Survey, Survey.id == SurveyAnswer.survey_id)
            .join(Call, Call.id == Survey.call_id)
            .where(
                SurveyAnswer.value.is_not(None),
                SurveyAnswer.question.in_(QUESTIONS),
                *between(Survey.started_at, low, high),
            )
            .group_by(day, queue, SurveyAnswer.question, bucket)
        )
    return sa.union_all(*parts)


def funnel_raw(
    dialect: str, low: datetime | None, high: datetime | None, zone: ZoneInfo
) -> AnySelect:
    """Calls counted on the day the call started, surveys on the day they started."""
    zero = constant("0", sa.Integer)
    call_day = day_of(dialect, Call.started_at, zone)
    call_agent, call_queue = named(Call.agent_name), named(Call.queue)
    calls = (
        sa.select(
            DAY_GRAIN_SQL.label("grain"),
            call_day.label("day"),
            call_agent.label("agent"),
            call_queue.label("queue"),
            count_if(Call.agent_name.is_not(None)).label("handled"),
            count_if(is_eligible(Call)).label("eligible"),
            zero.label("offered"),
            zero.label("started"),
            zero.label("completed"),
        )
        .where(Call.started_at.is_not(None), *between(Call.started_at, low, high))
        .group_by(call_day, call_agent, call_queue)
    )
    survey_day = day_of(dialect, Survey.started_at, zone)
    survey_agent, survey_queue = named(Call.agent_name), named(Call.queue)
    surveys = (
        sa.select(
            DAY_GRAIN_SQL.label("grain"),
            survey_day.label("day"),
            survey_agent.label("agent"),
            survey_queue.label("queue"),
            zero.label("handled"),
            zero.label("eligible"),
            sa.func.count().label("offered"),
            sa.func.count().label("started"),
            count_if(is_completed(Survey)).label("completed"),
        )
        .select_from(Survey)
        .join(Call, Call.id == Survey.call_id)
        .where(*between(Survey.started_at, low, high))
        .group_by(survey_day, survey_agent, survey_queue)
    )
    both = sa.union_all(calls, surveys).subquery("funnel_parts")
    return sa.select(
        both.c.grain,
        both.c.day,
        both.c.agent,
        both.c.queue,
        *(sa.func.sum(both.c[name]).label(name) for name in FUNNEL),
    ).group_by(both.c.grain, both.c.day, both.c.agent, both.c.queue)


RawRows = Callable[[str, datetime | None, datetime | None, ZoneInfo], AnyQuery]
ROLLUPS: tuple[tuple[type[Base], RawRows], ...] = (
    (NpsDaily, nps_raw),
    (DurationDaily, duration_raw),
    (FunnelDaily, funnel_raw),
)
WITH_TOTALS = (NpsDaily,)


def _stored(table: sa.Table, grain: str, first: date, end: date) -> AnySelect:
    return sa.select(*table.c).where(
        table.c.grain == grain, table.c.day >= first, table.c.day < end
    )


def rollup_rows(
    dialect: str,
    model: type[Base],
    raw: RawRows,
    period: Period,
    cutoff: datetime | None,
    *,
    zone: ZoneInfo,
    stored_grain: str = DAY_GRAIN,
    months: bool = True,
) -> sa.Subquery:
    """Rows of one rollup covering the period, all with the same columns: month
    rows for whole months (when `months`), `stored_grain` rows for the other days
    before the cut-off (its own day partly), raw rows from the cut-off on.

    The days are `zone`'s; a cut-off of None (no rollups, or rollups kept for
    another zone) computes the whole period from the raw rows."""
    table = table_of(model)
    end = period.last + timedelta(days=1)
    low, high = midnight(period.first, zone), midnight(end, zone)
    parts: list[AnyQuery] = []
    if cutoff is None:
        return raw(dialect, low, high, zone).subquery("rows")
    cutoff_day = cutoff.astimezone(zone).date()
    stored_end = min(end, cutoff_day + timedelta(days=1))
    if period.first < stored_end:
        months_first = period.first if period.first.day == 1 else next_month(period.first)
        months_end = min(month_start(stored_end), month_start(cutoff_day))
        if months and months_first < months_end:
            parts.append(_stored(table, MONTH_GRAIN, months_first, months_end))
            if period.first < months_first:
                parts.append(_stored(table, stored_grain, period.first, months_first))
            if months_end < stored_end:
                parts.append(_stored(table, stored_grain, months_end, stored_end))
        else:
            parts.append(_stored(table, stored_grain, period.first, stored_end))
    if cutoff < high:
        parts.append(_flat(raw(dialect, max(low, cutoff), high, zone)))
    if len(parts) == 1:
        return parts[0].subquery("rows")
    return sa.union_all(*parts).subquery("rows")


def _flat(query: AnyQuery) -> AnyQuery:
    """A UNION as a plain SELECT from it: SQLite cannot nest a parenthesised
    UNION inside another UNION."""
    if isinstance(query, sa.Select):
        return query
    inner = query.subquery("computed")
    return sa.select(*inner.c)


def day_totals(table: sa.Table, first: date | None) -> AnySelect:
    """Per-day rows of every agent and queue together (agent and queue ''): a
    trend over a year reads one row per day and question instead of hundreds."""
    nameless = constant("''", sa.Text)
    counts = [column for column in table.c if not column.primary_key]
    return (
        sa.select(
            TOTAL_GRAIN_SQL.label("grain"),
            table.c.day,
            nameless.label("agent"),
            nameless.label("queue"),
            table.c.question,
            *(sa.func.sum(column).label(column.name) for column in counts),
        )
        .where(table.c.grain == DAY_GRAIN, *(() if first is None else (table.c.day >= first,)))
        .group_by(table.c.day, table.c.question)
    )


def monthly_rows(dialect: str, table: sa.Table, first: date | None, end: date) -> AnySelect:
    """Month rows summed from the day rows of the months in [first, end)."""
    month = month_of(dialect, table.c.day)
    keys = [
        column for column in table.c if column.primary_key and column.name not in ("grain", "day")
    ]
    counts = [column for column in table.c if not column.primary_key]
    return (
        sa.select(
            MONTH_GRAIN_SQL.label("grain"),
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


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def read_cutoff(session: AsyncSession, zone: ZoneInfo) -> datetime | None:
    """The cut-off of rollups kept in `zone`'s days; None when there are none,
    or when they are kept in another zone's days (which `zone`'s days cut across).

    Read in its own statement: a refresh commits the rollups, their zone and
    the cut-off together, and a later statement never sees older rollups than
    this one."""
    row = (
        await session.execute(
            sa.select(RollupState.complete_before, RollupState.zone).where(RollupState.id == 1)
        )
    ).one_or_none()
    if row is None or row[1] != zone.key:
        return None
    value: datetime | None = row[0]
    return value


async def rollup_source(
    session: AsyncSession,
    model: type[Base],
    raw: RawRows,
    period: Period,
    zone: ZoneInfo,
    *,
    stored_grain: str = DAY_GRAIN,
    months: bool = True,
) -> sa.Subquery:
    """The period's rows of one rollup in `zone`'s days, as of the cut-off stored now."""
    cutoff = await read_cutoff(session, zone)
    return rollup_rows(
        dialect_of(session),
        model,
        raw,
        period,
        cutoff,
        zone=zone,
        stored_grain=stored_grain,
        months=months,
    )
