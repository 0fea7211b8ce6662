"""A small contact-centre history whose report figures are worked out by hand.

Every expected number in the API tests comes from this table; the comments
next to the tests show the arithmetic. Days count from Monday 2025-03-03.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ivr.core.domain import AgentLeg, CallRecord, HangupSide, SurveyStatus
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import answer, at, call, epoch, leg, start

DAY = 86_400
EXTENSIONS = {"Alice": 1001, "Bob": 1002, "Carol": 1003}
# A caller name a spreadsheet would run as a formula, to prove the CSV escapes it.
FORMULA_NAME = '=HYPERLINK("http://evil.example","click")'


@dataclass(frozen=True, slots=True)
class Row:
    linkedid: str
    day: int
    agent: str | None
    queue: str
    hold: int | None
    agent_score: int | None
    company_score: int | None
    status: SurveyStatus | None  # None: the call was not surveyed
    ended_by: HangupSide = HangupSide.AGENT
    abandoned: bool = False
    caller_name: str = "Ada Caller"


COMPLETED = SurveyStatus.COMPLETED
HISTORY = (
    Row("1", 0, "Alice", "sales", 10, 10, 9, COMPLETED, caller_name=FORMULA_NAME),
    Row("2", 0, "Alice", "sales", 45, 9, 5, COMPLETED, caller_name="-2+3"),
    Row("3", 1, "Alice", "sales", 100, 9, None, SurveyStatus.PARTIAL, caller_name="@SUM(A1)"),
    Row("4", 1, "Alice", "sales", 200, 7, 3, COMPLETED),
    Row("5", 7, "Alice", "sales", 700, 6, 10, COMPLETED),
    Row("6", 0, "Bob", "sales", 20, 8, 8, COMPLETED),
    Row("7", 2, "Bob", "sales", 400, 3, 2, COMPLETED),
    Row("8", 7, "Bob", "sales", None, 0, None, COMPLETED),
    Row("9", 1, "Bob", "support", 0, 10, 10, COMPLETED),
    Row("10", 2, "Carol", "support", 5, None, None, SurveyStatus.HUNG_UP),
    Row("11", 8, "Carol", "support", 65, 5, 9, COMPLETED),
    Row("12", 3, "Carol", "support", 30, None, None, None, ended_by=HangupSide.CALLER),
    Row("13", 3, None, "sales", 80, None, None, None, abandoned=True),
    Row("14", 4, "Alice", "sales", 15, None, None, None),
)


def record(row: Row) -> CallRecord:
    agents: tuple[AgentLeg, ...] = ()
    if row.agent is not None:
        agents = (
            leg(row.agent, EXTENSIONS[row.agent], queue=row.queue, connected=row.day * DAY + 30),
        )
    return call(
        row.linkedid,
        queue=row.queue,
        agents=agents,
        hold_seconds=row.hold,
        talk_seconds=120,
        ended_by=None if row.abandoned else row.ended_by,
        abandoned=row.abandoned,
        caller_name=row.caller_name,
        started_at=epoch(row.day * DAY),
        answered_at=epoch(row.day * DAY + 1),
    )


async def store_history(repository: CommittedWrites) -> None:
    """Every row of HISTORY: surveyed calls with their answers, the rest as calls.

    The policy found every call eligible that reached the survey: all but the
    abandoned one and the one whose caller hung up on the agent (12, 13); call
    14 was decided eligible and its caller left before the survey began.
    """
    for index, row in enumerate(HISTORY):
        calling = record(row)
        if not row.abandoned and row.ended_by is not HangupSide.CALLER:
            await repository.record_decision(calling, "eligible")
        if row.status is None:
            await repository.save_call(calling)
            continue
        started = row.day * DAY + 300 + index
        survey_id = await repository.begin_survey(calling, start(calling, started))
        assert survey_id is not None
        if row.status is not SurveyStatus.HUNG_UP:
            await repository.save_answer(
                survey_id, answer("agent", row.agent_score, seconds=started + 10)
            )
            if row.status is not SurveyStatus.PARTIAL or row.company_score is not None:
                await repository.save_answer(
                    survey_id, answer("company", row.company_score, seconds=started + 20)
                )
        await repository.finish_survey(survey_id, row.status, at(started + 30))


# The whole history lies in March 2025; "now" for the tests is well after it.
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
