"""The answers beyond NPS (CSAT, first-call resolution, effort) and the comment, per survey.

The responses list and the export read them in a second, small query keyed by
the survey ids they already found, so their tuned NPS statements (and the
covering indexes of migration 0003) stay as they are; the NPS arithmetic
never sees these answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Survey, SurveyAnswer, SurveyComment

EXTRA_QUESTIONS = ("csat", "fcr", "ces")
"""Stored under their own names; each becomes the column of the same name."""

EXTRA_FIELDS = (*EXTRA_QUESTIONS, "comment_file", "comment_seconds")
_CHUNK = 500


def any_answered(survey: type[Survey]) -> sa.ColumnElement[bool]:
    """The survey holds at least one answered question, of any kind."""
    return (
        sa.select(SurveyAnswer.id)
        .where(SurveyAnswer.survey_id == survey.id, SurveyAnswer.value.is_not(None))
        .exists()
    )


async def survey_extras(
    session: AsyncSession, survey_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """survey id -> {"csat": .., "fcr": .., "ces": .., "comment_file": .., "comment_seconds": ..}.

    Surveys with none of them are left out; a missing key means None.
    """
    extras: dict[int, dict[str, Any]] = {}
    for first in range(0, len(survey_ids), _CHUNK):
        chunk = list(survey_ids[first : first + _CHUNK])
        answers = await session.execute(
            sa.select(SurveyAnswer.survey_id, SurveyAnswer.question, SurveyAnswer.value).where(
                SurveyAnswer.survey_id.in_(chunk), SurveyAnswer.question.in_(EXTRA_QUESTIONS)
            )
        )
        for survey_id, question, value in answers.all():
            extras.setdefault(survey_id, {})[question] = value
        comments = await session.execute(
            sa.select(
                SurveyComment.survey_id, SurveyComment.file, SurveyComment.duration_seconds
            ).where(SurveyComment.survey_id.in_(chunk))
        )
        for survey_id, file, seconds in comments.all():
            extras.setdefault(survey_id, {}).update(comment_file=file, comment_seconds=seconds)
    return extras
