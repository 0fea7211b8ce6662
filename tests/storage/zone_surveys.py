"""Surveys stored at given UTC moments, for the tests of the reports' time zone."""

from __future__ import annotations

from datetime import datetime, timedelta

from ivr.core.domain import SurveyStatus
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import T0, answer, call, leg, start


async def store_surveys(repository: CommittedWrites, moments: tuple[datetime, ...]) -> None:
    """One promoter per moment: the call starts 5 minutes before its survey."""
    for number, moment in enumerate(moments):
        offset = (moment - T0).total_seconds()
        record = call(
            f"z{number}",
            agents=(leg("Alice", 1001, connected=offset - 290),),
            started_at=(moment - timedelta(minutes=5)).timestamp(),
            answered_at=(moment - timedelta(minutes=5)).timestamp(),
        )
        survey_id = await repository.begin_survey(record, start(record, offset))
        assert survey_id is not None
        await repository.save_answer(survey_id, answer("agent", 10, seconds=offset + 10))
        await repository.finish_survey(
            survey_id, SurveyStatus.COMPLETED, moment + timedelta(minutes=1)
        )
