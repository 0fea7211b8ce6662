"""Each report as a JSON-ready document, shared by the API and the dashboard.

The dashboard renders these very documents, so a number on the wall screen is
always the number the API gives for the same period - the browser tests check
exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from ivr.adapters.web.auth import Principal, mask_name, mask_number
from ivr.adapters.web.params import Parsed, encode_cursor
from ivr.adapters.web.stats import (
    OUTLIER_RULE,
    Outlier,
    add_funnels,
    completion_rate,
    find_outliers,
    margin_of_error,
    one_decimal,
    response_rate,
)
from ivr.config.settings import WebConfig
from ivr.core.nps import NpsSummary
from ivr.ports import (
    BucketNps,
    Duration,
    FunnelCounts,
    Grouping,
    Period,
    RecordingLookup,
    ReportReader,
    Response,
    ResponseFilter,
)

UTC_ZONE = ZoneInfo("UTC")
AGENT_QUESTION = "agent"
COMPANY_QUESTION = "company"

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """What every report needs besides its parameters."""

    reports: ReportReader
    settings: WebConfig
    principal: Principal
    today: date
    recordings: RecordingLookup | None = None
    # Whose days `today`, the periods and the day, week and month groups are:
    # `[reports] timezone`, or the API request's `tz` (the footer names it).
    zone: ZoneInfo = UTC_ZONE


def period_json(period: Period) -> dict[str, str]:
    return {"from": period.first.isoformat(), "to": period.last.isoformat()}


def figures(summary: NpsSummary, min_n: int) -> Document:
    """n, the three counts, NPS and its margin (one decimal), and the too-few flag."""
    return {
        "n": summary.n,
        "promoters": summary.promoters,
        "passives": summary.passives,
        "detractors": summary.detractors,
        "nps": one_decimal(summary.nps),
        "margin": one_decimal(margin_of_error(summary)),
        "too_few": summary.n < min_n,
    }


def _min_n(query: Parsed, settings: WebConfig) -> int:
    return query.integer("min_n") or settings.min_n


async def nps(context: Request, query: Parsed) -> Document:
    period = query.period(context.today)
    min_n = _min_n(query, context.settings)
    grouping = Grouping(query.text("group_by") or Grouping.DAY.value)
    question = query.text("question")
    rows = await context.reports.nps(
        period, grouping, agent=query.text("agent"), queue=query.text("queue")
    )
    return {
        "period": period_json(period),
        "group_by": grouping.value,
        "min_n": min_n,
        "rows": [
            {"group": row.group, "question": row.question, **figures(row.summary, min_n)}
            for row in rows
            if question is None or row.question == question
        ],
    }


async def agent_vs_company(context: Request, query: Parsed) -> Document:
    period = query.period(context.today)
    min_n = _min_n(query, context.settings)
    rows = await context.reports.agent_vs_company(period, queue=query.text("queue"))
    documents = []
    for row in rows:
        agent_nps, company_nps = row.agent_question.nps, row.company_question.nps
        gap = None if agent_nps is None or company_nps is None else agent_nps - company_nps
        documents.append(
            {
                "agent": row.agent,
                "n": row.agent_question.n,
                "too_few": row.agent_question.n < min_n,
                "agent_question": figures(row.agent_question, min_n),
                "company_question": figures(row.company_question, min_n),
                "gap": one_decimal(gap),
            }
        )
    return {"period": period_json(period), "min_n": min_n, "rows": documents}


async def champions(context: Request, query: Parsed) -> Document:
    period = query.period(context.today)
    min_n = _min_n(query, context.settings)
    count = query.integer("n") or context.settings.champions
    rows = await context.reports.nps(period, Grouping.AGENT, queue=query.text("queue"))
    ranked = [
        (row.group, row.summary)
        for row in rows
        if row.question == AGENT_QUESTION and row.group is not None and row.summary.n >= min_n
    ]

    def score(item: tuple[str | None, NpsSummary]) -> float:
        value = item[1].nps
        assert value is not None
        return value

    # An agent is in one list at most: with few agents the top half goes to
    # "top" and the rest to "bottom", so nobody is praised and flagged at once.
    top = sorted(ranked, key=lambda item: (-score(item), -item[1].n, item[0] or ""))
    top = top[: min(count, (len(ranked) + 1) // 2)]
    praised = {name for name, _ in top}
    bottom = sorted(
        (item for item in ranked if item[0] not in praised),
        key=lambda item: (score(item), -item[1].n, item[0] or ""),
    )[:count]
    return {
        "period": period_json(period),
        "min_n": min_n,
        "top": [{"agent": name, **figures(summary, min_n)} for name, summary in top],
        "bottom": [{"agent": name, **figures(summary, min_n)} for name, summary in bottom],
    }


def bucket_label(bucket: BucketNps) -> str:
    if bucket.low is None:
        return "unknown"
    if bucket.high is None:
        return f"{bucket.low}+ s"
    return f"{bucket.low}-{bucket.high} s"


async def nps_by_duration(context: Request, query: Parsed) -> Document:
    period = query.period(context.today)
    min_n = _min_n(query, context.settings)
    measure = Duration(query.text("measure") or Duration.HOLD.value)
    question = query.text("question")
    rows = await context.reports.nps_by_duration(period, measure, queue=query.text("queue"))
    return {
        "period": period_json(period),
        "measure": measure.value,
        "min_n": min_n,
        "rows": [
            {
                "low": row.low,
                "high": row.high,
                "label": bucket_label(row),
                "question": row.question,
                **figures(row.summary, min_n),
            }
            for row in rows
            if question is None or row.question == question
        ],
    }


def funnel_row(group: str | None, counts: FunnelCounts, *, outlier: bool) -> Document:
    return {
        "group": group,
        "handled": counts.handled,
        "eligible": counts.eligible,
        "offered": counts.offered,
        "started": counts.started,
        "completed": counts.completed,
        "response_rate": one_decimal(response_rate(counts)),
        "completion_rate": one_decimal(completion_rate(counts)),
        "outlier": outlier,
    }


def group_funnel(rows: Sequence[FunnelCounts], by: str) -> list[tuple[str | None, FunnelCounts]]:
    """Funnel rows summed per agent or per queue, named groups first.

    A group with nothing to count (the calls abandoned in a queue, which no
    agent handled) is left out rather than shown as a row of zeros.
    """
    groups: dict[str | None, list[FunnelCounts]] = {}
    for row in rows:
        groups.setdefault(row.agent if by == "agent" else row.queue, []).append(row)
    summed = [
        (
            name,
            add_funnels(
                members,
                agent=name if by == "agent" else None,
                queue=name if by == "queue" else None,
            ),
        )
        for name, members in groups.items()
    ]
    summed = [(name, counts) for name, counts in summed if counts.handled or counts.offered]
    summed.sort(key=lambda item: (item[0] is None, item[0] or ""))
    return summed


async def _outliers(
    context: Request, period: Period, min_n: int, z_limit: float
) -> tuple[Sequence[FunnelCounts], list[Outlier]]:
    funnel, cells = await asyncio.gather(
        context.reports.funnel(period), context.reports.nps_by_agent_and_queue(period)
    )
    return funnel, find_outliers(funnel, cells, min_n=min_n, z_limit=z_limit)


def _funnel_document(
    period: Period, by: str, rows: Sequence[FunnelCounts], found: Sequence[Outlier]
) -> Document:
    flagged = {outlier.agent for outlier in found}
    return {
        "period": period_json(period),
        "by": by,
        "rows": [
            funnel_row(name, counts, outlier=by == "agent" and name in flagged)
            for name, counts in group_funnel(rows, by)
        ],
    }


def _outliers_document(
    period: Period, min_n: int, z_limit: float, found: Sequence[Outlier]
) -> Document:
    return {
        "period": period_json(period),
        "rule": OUTLIER_RULE,
        "min_n": min_n,
        "z": z_limit,
        "rows": [outlier_json(outlier) for outlier in found],
    }


async def funnel(context: Request, query: Parsed) -> Document:
    period = query.period(context.today)
    settings = context.settings
    rows, found = await _outliers(context, period, settings.min_n, settings.outlier_z)
    return _funnel_document(period, query.text("by") or "agent", rows, found)


def outlier_json(outlier: Outlier) -> Document:
    return {
        "agent": outlier.agent,
        "queue": outlier.queue,
        "metric": outlier.metric,
        "value": one_decimal(outlier.value),
        "rest_value": one_decimal(outlier.rest_value),
        "n": outlier.n,
        "rest_n": outlier.rest_n,
        "z": round(outlier.z, 2),
    }


async def outliers(context: Request, query: Parsed) -> Document:
    period = query.period(context.today)
    min_n = _min_n(query, context.settings)
    z_limit = query.number("z") or context.settings.outlier_z
    _, found = await _outliers(context, period, min_n, z_limit)
    return _outliers_document(period, min_n, z_limit, found)


async def funnel_and_outliers(
    context: Request, query: Parsed, *, by: str
) -> tuple[Document, Document]:
    """What /api/funnel?by= and /api/outliers answer (with the configured min_n
    and z), from one pair of queries: the dashboard shows both on one page."""
    period = query.period(context.today)
    settings = context.settings
    rows, found = await _outliers(context, period, settings.min_n, settings.outlier_z)
    return (
        _funnel_document(period, by, rows, found),
        _outliers_document(period, settings.min_n, settings.outlier_z, found),
    )


def response_filter(query: Parsed, today: date) -> ResponseFilter:
    return ResponseFilter(
        period=query.period(today),
        agent=query.text("agent"),
        queue=query.text("queue"),
        question=query.text("question"),
        min_score=query.integer("min_score"),
        max_score=query.integer("max_score"),
    )


def visible(row: Response, principal: Principal) -> Response:
    """The row as this principal may see it: viewers get callers masked."""
    if not principal.masks_callers:
        return row
    return replace(
        row, caller_number=mask_number(row.caller_number), caller_name=mask_name(row.caller_name)
    )


def response_json(row: Response) -> Document:
    return {
        "survey_id": row.survey_id,
        "started_at": row.started_at.isoformat(),
        "status": row.status.value,
        "pbx": row.pbx,
        "linkedid": row.linkedid,
        "caller_number": row.caller_number,
        "caller_name": row.caller_name,
        "queue": row.queue,
        "agent": row.agent,
        "hold_seconds": row.hold_seconds,
        "talk_seconds": row.talk_seconds,
        "agent_score": row.agent_score,
        "company_score": row.company_score,
        "transferred": row.transferred,
        "opted_in": row.opted_in,
        "initiated_by": row.initiated_by,
        "csat": row.csat,
        "fcr": row.fcr,
        "ces": row.ces,
        "comment_file": row.comment_file,
        "comment_seconds": row.comment_seconds,
    }


async def responses(context: Request, query: Parsed) -> Document:
    filters = response_filter(query, context.today)
    limit = query.integer("limit")
    assert limit is not None
    page = await context.reports.responses(filters, after=query.cursor("cursor"), limit=limit)
    return {
        "period": period_json(filters.period),
        "rows": [response_json(visible(row, context.principal)) for row in page.rows],
        "next": None if page.next is None else encode_cursor(page.next),
    }
