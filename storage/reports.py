"""Read-side queries for the CLI and the dashboard, and their plain-text forms.

Counting happens in SQL (GROUP BY with CASE sums) so a report over a year of
surveys moves a few dozen numbers out of the database, not every answer. Which
score is a promoter, passive or detractor is taken from `ivr.core.nps.classify`, and
the NPS itself from `ivr.core.nps.NpsSummary`, so the rules live in one place.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from ivr.core.domain import HangupSide, SurveyStatus
from ivr.core.nps import MAX_SCORE, MIN_SCORE, Category, NpsSummary, classify
from storage.database import database_errors
from storage.extras import survey_extras
from storage.models import Call, CallAgent, Survey, SurveyAnswer
from storage.scores import (
    QUESTIONS,
    join_score_answers,
    score_answers,
)

AGENT_CHAIN_SEPARATOR = " > "

# A spreadsheet runs a cell beginning with one of these as a formula (OWASP's
# CSV injection list: = + - @ and the tab and carriage return that hide them).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# Spreadsheets skip leading blanks before a formula, and some read the
# full-width signs (U+FF1D, U+FF0B, U+FF0D, U+FF20) as their ASCII twins.
_FULL_WIDTH = str.maketrans("\uff1d\uff0b\uff0d\uff20", "=+-@")


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One survey with its call, flattened for CSV and JSON export.

    `agent_name`/`agent_interface` are the last agent, the one the survey
    credits; `agents` is the whole chain. Scores are None when the question was
    never answered, attempts None when it was never asked.
    """

    pbx: str
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    queue: str | None
    agent_name: str | None
    agent_interface: str | None
    agents: str
    hold_seconds: int | None
    talk_seconds: int | None
    ended_by: HangupSide | None
    agent_score: int | None
    company_score: int | None
    agent_attempts: int | None
    company_attempts: int | None
    status: SurveyStatus
    partial: bool
    started_at: datetime
    finished_at: datetime | None
    # How the survey came about: the caller pressed to take part (None where
    # the flow did not ask), who started it (caller, agent, or None for the
    # usual post-call hand-over), and whether the call was transferred.
    transferred: bool
    opted_in: bool | None
    initiated_by: str | None
    # Not NPS (storage/extras.py): CSAT 1-5, first-call resolution 1/0, effort
    # 1-7, and the recorded comment's file stem (None once purged) and length.
    csat: int | None = None
    fcr: int | None = None
    ces: int | None = None
    comment_file: str | None = None
    comment_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class QuestionNps:
    """The NPS of one question overall, per (last) agent and per queue.

    The None key groups calls with no agent or no queue recorded.
    """

    question: str
    overall: NpsSummary
    by_agent: Mapping[str | None, NpsSummary]
    by_queue: Mapping[str | None, NpsSummary]


@dataclass(frozen=True, slots=True)
class NpsReport:
    """NPS per question over surveys started in [since, until)."""

    since: datetime | None
    until: datetime | None
    questions: tuple[QuestionNps, ...]

    def question(self, name: str) -> QuestionNps:
        for entry in self.questions:
            if entry.question == name:
                return entry
        raise KeyError(name)


def _require_aware(**moments: datetime | None) -> None:
    """Refuse naive bounds: stored times are UTC, and a naive bound would be
    silently read as UTC even when the operator meant local time."""
    for name, moment in moments.items():
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"{name}={moment.isoformat()} has no timezone")


def _period(since: datetime | None, until: datetime | None) -> list[sa.ColumnElement[bool]]:
    _require_aware(since=since, until=until)
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(Survey.started_at >= since)
    if until is not None:
        conditions.append(Survey.started_at < until)
    return conditions


def _export_statement(period: list[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """Each survey of the period with its call and its two answers, oldest first."""
    scores = score_answers()
    columns = sa.select(
        Call.id.label("call_id"),
        Survey.id.label("survey_id"),
        Call.pbx,
        Call.linkedid,
        Call.caller_number,
        Call.caller_name,
        Call.queue,
        Call.agent_name,
        Call.agent_interface,
        Call.hold_seconds,
        Call.talk_seconds,
        Call.ended_by,
        Call.partial,
        Call.transferred,
        Survey.opted_in,
        Survey.initiated_by,
        Survey.status,
        Survey.started_at,
        Survey.finished_at,
        scores.agent.value.label("agent_score"),
        scores.agent.attempts.label("agent_attempts"),
        scores.company.value.label("company_score"),
        scores.company.attempts.label("company_attempts"),
    )
    joined = join_score_answers(
        columns.select_from(Survey).join(Call, Call.id == Survey.call_id), scores
    )
    return joined.where(*period).order_by(Survey.started_at, Survey.id)


async def export_rows(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ExportRow]:
    """One row per survey started in [since, until), oldest first."""
    period = _period(since, until)
    statement = _export_statement(period)
    chains = (
        sa.select(CallAgent.call_id, CallAgent.name)
        .where(CallAgent.call_id.in_(sa.select(Survey.call_id).where(*period)))
        .order_by(CallAgent.call_id, CallAgent.position)
    )
    async with database_errors("export the surveys"), sessions() as session:
        rows = (await session.execute(statement)).all()
        names: dict[int, list[str]] = {}
        for call_id, name in (await session.execute(chains)).all():
            names.setdefault(call_id, []).append(name)
        extras = await survey_extras(session, [row.survey_id for row in rows])
    return [
        ExportRow(
            pbx=row.pbx,
            linkedid=row.linkedid,
            caller_number=row.caller_number,
            caller_name=row.caller_name,
            queue=row.queue,
            agent_name=row.agent_name,
            agent_interface=row.agent_interface,
            agents=AGENT_CHAIN_SEPARATOR.join(names.get(row.call_id, ())),
            hold_seconds=row.hold_seconds,
            talk_seconds=row.talk_seconds,
            ended_by=None if row.ended_by is None else HangupSide(row.ended_by),
            agent_score=row.agent_score,
            company_score=row.company_score,
            agent_attempts=row.agent_attempts,
            company_attempts=row.company_attempts,
            status=SurveyStatus(row.status),
            partial=row.partial,
            started_at=row.started_at,
            finished_at=row.finished_at,
            transferred=row.transferred,
            opted_in=row.opted_in,
            initiated_by=row.initiated_by,
            **extras.get(row.survey_id, {}),
        )
        for row in rows
    ]


def _scores(category: Category) -> list[int]:
    return [score for score in range(MIN_SCORE, MAX_SCORE + 1) if classify(score) is category]


def _count(category: Category) -> sa.ColumnElement[Any]:
    """SUM(CASE WHEN value IN (...) THEN 1 ELSE 0 END), the scores from ivr.core.nps."""
    return sa.func.coalesce(
        sa.func.sum(sa.case((SurveyAnswer.value.in_(_scores(category)), 1), else_=0)), 0
    )


async def _counts(
    session: AsyncSession,
    group: InstrumentedAttribute[str | None] | None,
    questions: Sequence[str],
    period: Sequence[sa.ColumnElement[bool]],
) -> dict[tuple[str, Any], NpsSummary]:
    """NpsSummary per (question, group value); group None means one per question."""
    keys: list[InstrumentedAttribute[Any]] = [SurveyAnswer.question]
    if group is not None:
        keys.append(group)
    statement = (
        sa.select(
            *keys,
            _count(Category.PROMOTER).label("promoters"),
            _count(Category.PASSIVE).label("passives"),
            _count(Category.DETRACTOR).label("detractors"),
        )
        .select_from(SurveyAnswer)
        .join(Survey, Survey.id == SurveyAnswer.survey_id)
        .join(Call, Call.id == Survey.call_id)
        .where(
            SurveyAnswer.value.is_not(None),
            SurveyAnswer.question.in_(list(questions)),
            *period,
        )
        .group_by(*keys)
    )
    result: dict[tuple[str, Any], NpsSummary] = {}
    for row in (await session.execute(statement)).all():
        key = (row[0], row[1] if group is not None else None)
        result[key] = NpsSummary(
            promoters=int(row.promoters), passives=int(row.passives), detractors=int(row.detractors)
        )
    return result


def _groups(counts: Mapping[tuple[str, Any], NpsSummary], question: str) -> dict[Any, NpsSummary]:
    """The groups of one question, by name with the unnamed (None) group last."""
    found = [(group, summary) for (name, group), summary in counts.items() if name == question]
    found.sort(key=lambda item: (item[0] is None, item[0] or ""))
    return dict(found)


async def nps_report(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    questions: Sequence[str] = QUESTIONS,
) -> NpsReport:
    """NPS of each question over surveys started in [since, until).

    Unanswered questions (NULL) are not counted; a question nobody answered
    still appears, with n=0 and no NPS.
    """
    period = _period(since, until)
    async with database_errors("compute the NPS report"), sessions() as session:
        overall = await _counts(session, None, questions, period)
        by_agent = await _counts(session, Call.agent_name, questions, period)
        by_queue = await _counts(session, Call.queue, questions, period)
    empty = NpsSummary(promoters=0, passives=0, detractors=0)
    return NpsReport(
        since=since,
        until=until,
        questions=tuple(
            QuestionNps(
                question=question,
                overall=overall.get((question, None), empty),
                by_agent=_groups(by_agent, question),
                by_queue=_groups(by_queue, question),
            )
            for question in questions
        ),
    )


def _plain(value: object) -> object:
    """A cell's JSON value: timestamps in ISO 8601, enums by their value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def csv_cell(value: object) -> str:
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, bool):
        return "true" if plain else "false"
    text = str(plain)
    # Only text can smuggle a formula: numbers here are counts and 0..10 scores.
    if isinstance(plain, str) and _looks_like_formula(text):
        return "'" + text
    return text


def _looks_like_formula(text: str) -> bool:
    if text.startswith(_FORMULA_PREFIXES):
        return True
    return text.lstrip(" \u00a0\u3000").translate(_FULL_WIDTH).startswith(_FORMULA_PREFIXES)


def export_field_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(ExportRow))


def rows_to_csv(rows: Iterable[ExportRow]) -> str:
    """CSV with a header line of field names, safe to open in a spreadsheet.

    Caller names come from the caller's own phone, so a name like
    `=HYPERLINK(...)` is attacker-controlled; such cells get a leading quote.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(export_field_names())
    for row in rows:
        writer.writerow([csv_cell(getattr(row, name)) for name in export_field_names()])
    return buffer.getvalue()


def rows_to_json(rows: Iterable[ExportRow]) -> str:
    """A JSON array of objects; non-ASCII caller names are kept as they are."""
    documents = [
        {name: _plain(getattr(row, name)) for name in export_field_names()} for row in rows
    ]
    return json.dumps(documents, ensure_ascii=False, indent=2)
