"""What the adapters need from the outside world, stated as protocols.

Adapters (`agi.py`, `ami.py`, `web.py`) are handed objects that satisfy these;
they never import `storage` themselves, which keeps them testable with the real
storage or any other implementation, and keeps the wiring in `service.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ivr.domain import Answer, CallRecord, SurveyStart, SurveyStatus


class SurveyRepository(Protocol):
    async def save_call(self, call: CallRecord) -> None:
        """Insert or update the call keyed by (call.pbx, call.linkedid).

        Later knowledge wins field by field, but a known value is never replaced
        by an unknown one (None), and the agent chain only ever grows.
        """

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        """Store the call and open its survey; return the survey id.

        Returns None when (pbx, linkedid) already has a survey: a repeated or
        replayed AGI request must never count twice.
        """

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        """Write one question's outcome the moment it is known (upsert by question)."""

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        """Close the survey with the place it stopped."""
