"""The responses list: one page of surveys, newest first, and its CSV.

Its own module because it is the one report that reads raw surveys rather
than rollups, with its own cost model: keyset pages, and a choice of which
index to walk first (`_agent_first`) so a rare filter stays as fast as the
first page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.core.domain import SurveyStatus
from ivr.core.nps import MAX_SCORE, MIN_SCORE
from ivr.ports import RESPONSE_FIELDS, Response, ResponseCursor, ResponseFilter, ResponsePage
from storage.extras import any_answered, survey_extras
from storage.models import Call, NpsDaily, Survey
from storage.report_sql import CATEGORIES, COUNTS, between, midnight, scores_of, table_of
from storage.reports import csv_cell
from storage.rollup_queries import nps_raw, rollup_source
from storage.scores import (
    AGENT_QUESTION,
    COMPANY_QUESTION,
    QUESTIONS,
    AnySelect,
    ScoreAnswers,
    join_score_answers,
    score_answers,
)


async def read_responses(
    session: AsyncSession,
    filters: ResponseFilter,
    *,
    after: ResponseCursor | None,
    limit: int,
    zone: ZoneInfo,
) -> ResponsePage:
    """Keyset pagination on (started_at, id): a page deep in five million rows
    costs what the first one does, where OFFSET would read every row before it.
    The period's days are `zone`'s."""
    agent_first = await _agent_first(session, filters, limit, zone)
    statement = _responses_statement(
        filters, after=after, limit=limit, agent_first=agent_first, zone=zone
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
    filters: ResponseFilter,
    *,
    after: ResponseCursor | None,
    limit: int,
    agent_first: bool,
    zone: ZoneInfo,
) -> AnySelect:
    """The page's surveys are found first, then their calls are read.

    Finding the page needs only the surveys, their two answers and (for an
    agent or queue filter) the call's agent and queue; the calls' other
    columns are read for the page's rows alone, so a search that visits
    thousands of candidates touches no more than the indexes it needs.
    """
    page = _page_of_surveys(filters, after=after, limit=limit, agent_first=agent_first, zone=zone)
    calls = table_of(Call)
    surveys = table_of(Survey)
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
    filters: ResponseFilter,
    *,
    after: ResponseCursor | None,
    limit: int,
    agent_first: bool,
    zone: ZoneInfo,
) -> sa.Subquery:
    scores = score_answers()
    columns = sa.select(
        Survey.id,
        Survey.call_id,
        Survey.started_at,
        Survey.status,
        scores.agent.value.label("agent_score"),
        scores.company.value.label("company_score"),
    )
    statement = (
        join_score_answers(columns.select_from(Survey), scores)
        .where(
            *between(
                Survey.started_at,
                midnight(filters.period.first, zone),
                midnight(filters.period.last + timedelta(days=1), zone),
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
    statement = _of_agent_and_queue(statement, filters, agent_first=agent_first, zone=zone)
    statement = _in_score_range(statement, filters, scores)
    if after is not None:
        statement = statement.where(
            Survey.started_at <= after.started_at,
            sa.or_(
                Survey.started_at < after.started_at,
                Survey.id < after.survey_id,
            ),
        )
    return statement.subquery("page")


def _of_agent_and_queue(
    statement: AnySelect, filters: ResponseFilter, *, agent_first: bool, zone: ZoneInfo
) -> AnySelect:
    if filters.agent is not None and agent_first:
        chosen = _agent_calls(filters, zone)
        statement = statement.join(chosen, chosen.c.id == Survey.call_id)
        if filters.queue is not None:
            statement = statement.where(
                Survey.call_id.in_(
                    sa.select(Call.id).where(Call.id == Survey.call_id, Call.queue == filters.queue)
                )
            )
    elif filters.agent is not None or filters.queue is not None:
        calls = table_of(Call)
        statement = statement.join(calls, calls.c.id == Survey.call_id)
        if filters.agent is not None:
            statement = statement.where(calls.c.agent_name == filters.agent)
        if filters.queue is not None:
            statement = statement.where(calls.c.queue == filters.queue)
    return statement


def _in_score_range(
    statement: AnySelect, filters: ResponseFilter, scores: ScoreAnswers
) -> AnySelect:
    if filters.min_score is None and filters.max_score is None:
        return statement
    scored = {
        AGENT_QUESTION: (scores.agent.value,),
        COMPANY_QUESTION: (scores.company.value,),
    }.get(filters.question or "", (scores.agent.value, scores.company.value))
    return statement.where(
        sa.or_(*(_in_range(value, filters.min_score, filters.max_score) for value in scored))
    )


async def _agent_first(
    session: AsyncSession, filters: ResponseFilter, limit: int, zone: ZoneInfo
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
    rows = await rollup_source(session, NpsDaily, nps_raw, filters.period, zone)
    questions = [filters.question] if filters.question else list(QUESTIONS)
    low = MIN_SCORE if filters.min_score is None else filters.min_score
    high = MAX_SCORE if filters.max_score is None else filters.max_score
    mine = rows.c.agent == filters.agent
    shares = [
        sum(1 for score in scores_of(category) if low <= score <= high) / len(scores_of(category))
        for category in CATEGORIES
    ]
    answered = rows.c.promoters + rows.c.passives + rows.c.detractors
    statement = sa.select(
        sa.func.sum(answered),
        sa.func.sum(sa.case((mine, answered), else_=0)),
        *(sa.func.sum(sa.case((mine, rows.c[name]), else_=0)) for name in COUNTS),
    ).where(rows.c.question.in_(questions))
    total, agent_total, *agent_counts = (await session.execute(statement)).one()
    matches = sum(
        float(count or 0) * share for count, share in zip(agent_counts, shares, strict=True)
    )
    walk = float(total or 0) if matches < 1 else limit * float(total or 0) / matches
    return float(agent_total or 0) < walk


def _agent_calls(filters: ResponseFilter, zone: ZoneInfo) -> sa.CTE:
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
    calls = table_of(Call)
    # A survey starts after its call; a day of slack covers the longest call.
    low = midnight(filters.period.first, zone) - timedelta(days=1)
    high = midnight(filters.period.last + timedelta(days=1), zone)
    agents = calls.c.agent_name == filters.agent
    # Two SELECTs rather than an OR, so each can use the (agent, start) index.
    chosen = sa.union_all(
        sa.select(calls.c.id).where(agents, calls.c.started_at >= low, calls.c.started_at < high),
        sa.select(calls.c.id).where(agents, calls.c.started_at.is_(None)),
    )
    return chosen.cte("chosen_calls").prefix_with("MATERIALIZED")


def _in_range(value: Any, low: int | None, high: int | None) -> sa.ColumnElement[bool]:
    conditions = [value.is_not(None)]
    if low is not None:
        conditions.append(value >= low)
    if high is not None:
        conditions.append(value <= high)
    return sa.and_(*conditions)


def responses_csv(rows: Sequence[Response], *, header: bool) -> str:
    """The export's escaping (storage.reports), so both CSVs are equally safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(RESPONSE_FIELDS)
    for row in rows:
        writer.writerow([csv_cell(getattr(row, name)) for name in RESPONSE_FIELDS])
    return buffer.getvalue()
