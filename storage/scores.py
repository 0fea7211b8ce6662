"""The two NPS questions and the join that puts a survey's two scores on one row.

The export (`storage.reports`) and the responses page (`storage.response_pages`)
both show a survey with its agent and company answers side by side; the join
is written here once so the two cannot drift apart (a different question name,
an inner join dropping unanswered surveys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from storage.models import Survey, SurveyAnswer

AGENT_QUESTION = "agent"
COMPANY_QUESTION = "company"
QUESTIONS = (AGENT_QUESTION, COMPANY_QUESTION)


@dataclass(frozen=True, slots=True)
class ScoreAnswers:
    """The agent and company answer rows, as aliases of `answers` to select from."""

    agent: Any
    company: Any


def score_answers() -> ScoreAnswers:
    return ScoreAnswers(
        agent=aliased(SurveyAnswer, name="agent_answer"),
        company=aliased(SurveyAnswer, name="company_answer"),
    )


AnySelect = sa.Select[*tuple[Any, ...]]


def join_score_answers(statement: AnySelect, answers: ScoreAnswers) -> AnySelect:
    """Outer joins, so a survey without one of the answers keeps its row."""
    return statement.outerjoin(
        answers.agent,
        sa.and_(answers.agent.survey_id == Survey.id, answers.agent.question == AGENT_QUESTION),
    ).outerjoin(
        answers.company,
        sa.and_(
            answers.company.survey_id == Survey.id,
            answers.company.question == COMPANY_QUESTION,
        ),
    )
