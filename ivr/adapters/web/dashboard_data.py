"""What each dashboard page shows, shaped from the API's own documents.

The pages fetch the very documents `ivr.adapters.web.views` gives the JSON API
and only reshape them here (join per agent, total the funnel, sort), so a
figure on the wall screen cannot drift from the API's. Nothing here writes
markup: the templates do, which keeps this testable with plain tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ivr.adapters.web import views
from ivr.adapters.web.params import Parsed
from ivr.ports import Period

DAY_TREND_MAX_DAYS = 62
WEEK_TREND_MAX_DAYS = 400
RECENT_DETRACTORS = 15
DETRACTOR_MAX = 6
FUNNEL_STEPS = ("handled", "eligible", "offered", "started", "completed")
QUESTIONS = (views.AGENT_QUESTION, views.COMPANY_QUESTION)

Row = dict[str, Any]


def period_query(period: Period, **extra: Any) -> Parsed:
    return Parsed({"from": period.first, "to": period.last, **extra})


def trend_grouping(period: Period) -> str:
    """Days for two months, weeks for about a year, months beyond: a readable chart."""
    days = (period.last - period.first).days + 1
    if days <= DAY_TREND_MAX_DAYS:
        return "day"
    return "week" if days <= WEEK_TREND_MAX_DAYS else "month"


def trend_starts(period: Period, grouping: str) -> list[date]:
    """Every day, week or month start in the period, so gaps show as gaps."""
    if grouping == "day":
        return [
            period.first + timedelta(days=index)
            for index in range((period.last - period.first).days + 1)
        ]
    if grouping == "week":
        start = period.first - timedelta(days=period.first.weekday())
        weeks = []
        while start <= period.last:
            weeks.append(start)
            start += timedelta(days=7)
        return weeks
    month = period.first.replace(day=1)
    months = []
    while month <= period.last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


@dataclass(frozen=True, slots=True)
class Trend:
    """A chart's points: one value per start and question, None where nobody answered."""

    grouping: str
    starts: list[date]
    values: dict[str, list[float | None]]


def trend(document: views.Document, period: Period) -> Trend:
    grouping = document["group_by"]
    starts = trend_starts(period, grouping)
    found: dict[tuple[str, str], float | None] = {
        (row["group"], row["question"]): row["nps"] for row in document["rows"]
    }
    values = {
        question: [found.get((start.isoformat(), question)) for start in starts]
        for question in QUESTIONS
    }
    return Trend(grouping, starts, values)


def by_question(rows: Iterable[views.Document]) -> dict[str, views.Document]:
    return {row["question"]: row for row in rows}


def by_group(
    scores: Iterable[views.Document], handled: Iterable[str | None]
) -> dict[str | None, dict[str, views.Document]]:
    """Each group's rows by question, and an empty entry for a group that handled
    calls but has no answer: it is still a line of the table."""
    questions: dict[str | None, dict[str, views.Document]] = {}
    for row in scores:
        questions.setdefault(row["group"], {})[row["question"]] = row
    for name in handled:
        questions.setdefault(name, {})
    return questions


# --- Overview ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overview:
    overall: dict[str, views.Document]
    trend: Trend
    totals: dict[str, int]
    response_rate: float | None
    champions: views.Document
    outliers: views.Document


def funnel_totals(rows: Iterable[views.Document]) -> dict[str, int]:
    listed = list(rows)
    return {step: sum(row[step] for row in listed) for step in FUNNEL_STEPS}


async def overview(context: views.Request, period: Period) -> Overview:
    whole, over_time, (funnel, outliers), best = await asyncio.gather(
        views.nps(context, period_query(period, group_by="all")),
        views.nps(context, period_query(period, group_by=trend_grouping(period))),
        views.funnel_and_outliers(context, period_query(period), by="queue"),
        views.champions(context, period_query(period)),
    )
    totals = funnel_totals(funnel["rows"])
    offered = totals["offered"]
    return Overview(
        overall=by_question(whole["rows"]),
        trend=trend(over_time, period),
        totals=totals,
        response_rate=100.0 * totals["completed"] / offered if offered else None,
        champions=best,
        outliers=outliers,
    )


# --- Agents -----------------------------------------------------------------------------

SORT_COLUMNS = (
    "agent",
    "n",
    "agent_nps",
    "company_nps",
    "gap",
    "completed",
    "response_rate",
    "completion_rate",
)


def agent_row(
    name: str, questions: dict[str, views.Document], gap: float | None, steps: views.Document
) -> Row:
    """One line of the Agents table: the agent question's figures, the company NPS,
    the same-calls gap and the funnel; an agent with calls but no answer has n = 0."""
    mine, company = questions.get(views.AGENT_QUESTION), questions.get(views.COMPANY_QUESTION)
    return {
        "agent": name,
        "n": mine["n"] if mine else 0,
        "agent_nps": mine["nps"] if mine else None,
        "agent_margin": mine["margin"] if mine else None,
        "company_nps": company["nps"] if company else None,
        "gap": gap,
        "completed": steps.get("completed", 0),
        "response_rate": steps.get("response_rate"),
        "completion_rate": steps.get("completion_rate"),
        "outlier": steps.get("outlier", False),
        "too_few": mine["too_few"] if mine else True,
        "split": mine,
    }


def agent_rows(
    scores: Sequence[views.Document],
    same_calls: Sequence[views.Document],
    funnel: Sequence[views.Document],
) -> list[Row]:
    """Every agent who answered or handled a call, once; calls with no agent are left out."""
    gaps = {row["agent"]: row.get("gap") for row in same_calls}
    steps = {row["group"]: row for row in funnel}
    questions = by_group(scores, steps)
    return [
        agent_row(name, found, gaps.get(name), steps.get(name, {}))
        for name, found in questions.items()
        if name is not None
    ]


def _sort_key(row: Row, column: str) -> tuple[Any, str]:
    value = row[column]
    return (value.lower() if isinstance(value, str) else value, row["agent"].lower())


def sort_rows(rows: Sequence[Row], column: str, *, descending: bool) -> list[Row]:
    """Sorted by the column either way, ties by name; rows without a value always last."""
    present = [row for row in rows if row[column] is not None]
    missing = [row for row in rows if row[column] is None]
    present.sort(key=lambda row: _sort_key(row, column), reverse=descending)
    return present + sorted(missing, key=lambda row: row["agent"].lower())


async def agents(
    context: views.Request, period: Period, column: str, *, descending: bool
) -> list[Row]:
    scores, same_calls, funnel = await asyncio.gather(
        views.nps(context, period_query(period, group_by="agent")),
        views.agent_vs_company(context, period_query(period)),
        views.funnel(context, period_query(period, by="agent")),
    )
    rows = agent_rows(scores["rows"], same_calls["rows"], funnel["rows"])
    return sort_rows(rows, column, descending=descending)


# --- One agent --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentPage:
    name: str
    overall: dict[str, views.Document]
    trend: Trend
    paired: views.Document | None
    steps: views.Document | None
    flags: list[views.Document]
    detractors: list[views.Document]
    playable: frozenset[int]

    @property
    def unknown(self) -> bool:
        """Nothing at all in the period: no call handled, no answer, no detractor."""
        answered = any(row["n"] for row in self.overall.values())
        return self.steps is None and not self.detractors and not answered


async def playable(context: views.Request, rows: Sequence[views.Document]) -> frozenset[int]:
    """The recorded comments an admin can play here (the file is readable locally)."""
    if context.recordings is None or context.principal.masks_callers:
        return frozenset()
    with_comment = [row["survey_id"] for row in rows if row.get("comment_file")]
    return await context.recordings.playable(with_comment) if with_comment else frozenset()


def _only(rows: Iterable[views.Document], key: str, name: str) -> list[views.Document]:
    return [row for row in rows if row[key] == name]


async def agent(context: views.Request, period: Period, name: str) -> AgentPage:
    recent_query = period_query(
        period, agent=name, max_score=DETRACTOR_MAX, limit=RECENT_DETRACTORS
    )
    whole, over_time, same_calls, (funnel, flagged), recent = await asyncio.gather(
        views.nps(context, period_query(period, group_by="all", agent=name)),
        views.nps(context, period_query(period, group_by=trend_grouping(period), agent=name)),
        views.agent_vs_company(context, period_query(period)),
        views.funnel_and_outliers(context, period_query(period), by="agent"),
        views.responses(context, recent_query),
    )
    steps = _only(funnel["rows"], "group", name)
    paired = _only(same_calls["rows"], "agent", name)
    return AgentPage(
        name=name,
        overall=by_question(whole["rows"]),
        trend=trend(over_time, period),
        paired=paired[0] if paired else None,
        steps=steps[0] if steps else None,
        flags=_only(flagged["rows"], "agent", name),
        detractors=recent["rows"],
        playable=await playable(context, recent["rows"]),
    )


# --- Queues -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuesPage:
    rows: list[Row]
    hold: views.Document
    talk: views.Document


def queue_rows(scores: Sequence[views.Document], funnel: Sequence[views.Document]) -> list[Row]:
    """Every queue with answers or calls, by name, calls outside any queue last."""
    steps = {row["group"]: row for row in funnel}
    questions = by_group(scores, steps)
    names = sorted(questions, key=lambda name: (name is None, name or ""))
    return [
        {
            "queue": name,
            "n": questions[name].get(views.AGENT_QUESTION, {}).get("n", 0),
            "questions": questions[name],
            **{step: steps.get(name, {}).get(step, 0) for step in FUNNEL_STEPS},
            "response_rate": steps.get(name, {}).get("response_rate"),
        }
        for name in names
    ]


async def queues(context: views.Request, period: Period) -> QueuesPage:
    scores, funnel, hold, talk = await asyncio.gather(
        views.nps(context, period_query(period, group_by="queue")),
        views.funnel(context, period_query(period, by="queue")),
        views.nps_by_duration(context, period_query(period, measure="hold", question="agent")),
        views.nps_by_duration(context, period_query(period, measure="talk", question="agent")),
    )
    return QueuesPage(queue_rows(scores["rows"], funnel["rows"]), hold, talk)
