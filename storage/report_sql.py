"""The SQL vocabulary of the reports: rollup grains, bucket edges, and expressions.

Shared by the queries that fill the rollups (`storage.rollup_queries`), their
maintenance (`storage.rollup_refresh`) and the readers (`storage.analytics`,
`storage.response_pages`), so a grain name or a category's scores are
spelled once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ivr.core.domain import SurveyStatus
from ivr.core.nps import MAX_SCORE, MIN_SCORE, Category, classify
from ivr.ports import Duration
from storage.models import Base, Call, Survey, SurveyAnswer
from storage.scores import AnySelect

# A missing agent or queue is stored as '' in the rollups: their key columns are
# part of a primary key and cannot be NULL. It is turned back into None on read.
NO_NAME = ""
# Bucket edges in seconds: bucket i is [EDGES[i], EDGES[i+1]), the last is open.
HOLD_EDGES: tuple[int, ...] = (0, 30, 60, 120, 300, 600)
TALK_EDGES: tuple[int, ...] = (0, 60, 180, 300, 600, 1200)
UNKNOWN_BUCKET = -1
UTC_ZONE = ZoneInfo("UTC")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+/-]{1,64}$")
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
EDGES = {Duration.HOLD: HOLD_EDGES, Duration.TALK: TALK_EDGES}
COUNTS = ("promoters", "passives", "detractors")
CATEGORIES = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)
PAIRED = ("paired_promoters", "paired_passives", "paired_detractors")
FUNNEL = ("handled", "eligible", "offered", "started", "completed")


# --- Expressions ------------------------------------------------------------------------
#
# Everything that appears in a GROUP BY is written without bound parameters:
# PostgreSQL matches a grouped expression by its text, and two renderings of
# coalesce(x, $1) and coalesce(x, $2) are different expressions to it.


AnyCompound = sa.CompoundSelect[*tuple[Any, ...]]
AnyQuery = AnySelect | AnyCompound


def constant(sql: str, type_: Any) -> sa.ColumnElement[Any]:
    return sa.literal_column(sql, type_)


DAY_GRAIN_SQL = constant(f"'{DAY_GRAIN}'", sa.String)
MONTH_GRAIN_SQL = constant(f"'{MONTH_GRAIN}'", sa.String)
TOTAL_GRAIN_SQL = constant(f"'{TOTAL_GRAIN}'", sa.String)


def month_of(dialect: str, day: Any) -> sa.ColumnElement[date]:
    """The first day of `day`'s month (day minus its day-of-month, plus one)."""
    if dialect == "postgresql":
        offset = sa.cast(sa.extract("day", day), sa.Integer) - constant("1", sa.Integer)
        return sa.type_coerce(day - offset, sa.Date)
    return sa.type_coerce(sa.func.date(day, constant("'start of month'", sa.Text)), sa.Date)


def zone_literal(zone: ZoneInfo) -> str:
    """The zone's name as an SQL string literal.

    Inlined rather than bound: a day expression appears in GROUP BY, and
    PostgreSQL matches grouped expressions by their text (see above). The name
    comes from ZoneInfo, and only names made of these characters are accepted,
    so no quote can reach the SQL.
    """
    if not _ZONE_NAME.match(zone.key):
        raise ValueError(f"{zone.key!r} is not a time zone name the reports can use")
    return f"'{zone.key}'"


def day_of(dialect: str, moment: Any, zone: ZoneInfo) -> sa.ColumnElement[date]:
    """The calendar day of a stored timestamp in `zone`, in both dialects.

    PostgreSQL stores timestamptz and converts it itself. SQLite stores UTC text
    ("2025-03-03 09:00:00.000000") and knows no zones: date() is the UTC day,
    and any other zone goes through `local_day`, the Python function
    `storage.database` registers on every SQLite connection.
    """
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(constant(zone_literal(zone), sa.Text), moment), sa.Date)
    if zone.key == UTC_ZONE.key:
        return sa.type_coerce(sa.func.date(moment), sa.Date)
    return sa.type_coerce(sa.func.local_day(moment, constant(zone_literal(zone), sa.Text)), sa.Date)


def named(column: Any) -> sa.ColumnElement[str]:
    return sa.func.coalesce(column, constant("''", sa.Text))


def scores_of(category: Category) -> list[int]:
    return [score for score in range(MIN_SCORE, MAX_SCORE + 1) if classify(score) is category]


def in_category(value: Any, category: Category) -> sa.ColumnElement[bool]:
    """value IN (...) with the scores of `category` as `ivr.core.nps.classify` defines them."""
    condition: sa.ColumnElement[bool] = value.in_(scores_of(category))
    return condition


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    one, zero = constant("1", sa.Integer), constant("0", sa.Integer)
    return sa.func.coalesce(sa.func.sum(sa.case((condition, one), else_=zero)), zero)


def bucket_of(seconds: Any, edges: Sequence[int]) -> sa.ColumnElement[int]:
    """The index of the bucket `seconds` falls in, UNKNOWN_BUCKET when NULL."""
    whens: list[tuple[sa.ColumnElement[bool], sa.ColumnElement[int]]] = [
        (seconds.is_(None), constant(str(UNKNOWN_BUCKET), sa.SmallInteger))
    ]
    for index in range(len(edges) - 1, 0, -1):
        whens.append(
            (
                seconds >= constant(str(edges[index]), sa.Integer),
                constant(str(index), sa.SmallInteger),
            )
        )
    return sa.case(*whens, else_=constant("0", sa.SmallInteger))


def is_eligible(call: type[Call]) -> sa.ColumnElement[bool]:
    """Which handled calls the survey policy decided to survey (ivr.core.policy).

    Exactly `policy_decision = 'eligible'`. Calls stored before migration 0004
    were never decided; that migration gave them the decision the reports used
    to derive (an agent answered, not abandoned, not ended by the caller), so
    their past figures are unchanged and no query has to tell old rows apart.
    """
    return call.policy_decision == constant("'eligible'", sa.Text)


def is_completed(survey: type[Survey]) -> sa.ColumnElement[bool]:
    """The survey ended completed or partial and holds at least one score."""
    answered = (
        sa.select(SurveyAnswer.id)
        .where(SurveyAnswer.survey_id == survey.id, SurveyAnswer.value.is_not(None))
        .exists()
    )
    return sa.and_(survey.status.in_(COMPLETED_STATUSES), answered)


def between(
    moment: Any, low: datetime | None, high: datetime | None
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if low is not None:
        conditions.append(moment >= low)
    if high is not None:
        conditions.append(moment < high)
    return conditions


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """When `day` begins in `zone`, as a UTC instant (stored times are UTC).

    A midnight that a DST change skips is read with the offset before the
    change, which lands on the first moment the day really has.
    """
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def table_of(model: type[Base]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
