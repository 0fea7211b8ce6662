"""The demo's generated history: the stored outcome of each planned call, as tables."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from ivr.admin.demo_history import past_call, past_calls, run_survey
from ivr.core.domain import SurveyStatus
from ivr.core.survey import Outcome, Question, SurveySpec
from ivr.sim.plan import Agent, CallPlan, Flow, Turn

SPEC = SurveySpec(
    questions=(Question("agent", "q-agent"), Question("company", "q-company")),
    intro="intro",
    invalid="invalid",
    no_input="no-input",
    thanks="thanks",
)
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
AGENTS = (Agent("Ana", "PJSIP/ana"), Agent("Ben", "PJSIP/ben"))


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        (
            (Turn.keys("8"), Turn.keys("9")),
            ((Outcome("agent", 8, 1), Outcome("company", 9, 1)), SurveyStatus.COMPLETED),
        ),
        (
            (Turn.keys("10"), Turn.keys("1#")),
            ((Outcome("agent", 10, 1), Outcome("company", 1, 1)), SurveyStatus.COMPLETED),
        ),
        (
            (Turn.keys("#"), Turn.keys("7"), Turn.silence(), Turn.keys("3")),
            ((Outcome("agent", 7, 2), Outcome("company", 3, 2)), SurveyStatus.COMPLETED),
        ),
        (
            (Turn.keys("6"), Turn.hangup()),
            ((Outcome("agent", 6, 1),), SurveyStatus.PARTIAL),
        ),
        ((Turn.hangup(),), ((), SurveyStatus.HUNG_UP)),
        (
            (),
            ((Outcome("agent", None, 3), Outcome("company", None, 3)), SurveyStatus.NO_ANSWER),
        ),
    ],
    ids=["8 and 9", "1-0 and 1-#", "invalid #, then silence", "hang-up", "at once", "silent"],
)
def test_the_survey_machine_turns_the_callers_keys_into_answers(
    turns: tuple[Turn, ...], expected: tuple[tuple[Outcome, ...], SurveyStatus]
) -> None:
    """The same machine as a live call; the caller listens to the intro."""
    assert expected == run_survey(SPEC, turns)


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (
            CallPlan(flow=Flow.ABANDON_IN_QUEUE, agents=AGENTS, hold_seconds=40),
            (None, False, True, None, "support", 40),
        ),
        (
            CallPlan(flow=Flow.CALLER_HANGS_UP_BRIDGED, agents=AGENTS, agent_leg_survey=True),
            ("agent_leg", False, False, "Ana", "support", 1),
        ),
        (
            CallPlan(flow=Flow.BLIND_TRANSFER, agents=AGENTS, survey=(Turn.keys("9"),)),
            ("eligible", True, False, "Ben", "sales", 0),
        ),
        (
            CallPlan(flow=Flow.ATTENDED_TRANSFER_DIRECT, agents=AGENTS, hold_seconds=12),
            ("eligible", True, False, "Ben", "support", 12),
        ),
    ],
    ids=["abandoned", "agent leg via F()", "blind transfer", "attended direct"],
)
def test_each_flow_is_stored_as_tracking_would_store_it(
    plan: CallPlan, expected: tuple[str | None, bool, bool, str | None, str, int]
) -> None:
    """Decision, whether surveyed, abandoned, credited agent, queue and hold of the last
    queue leg (a direct attended transfer keeps the first queue)."""
    past = past_call(plan, pbx="demo", linkedid="1.1", at=AT, spec=SPEC)
    agent = past.call.last_agent
    assert expected == (
        past.decision,
        past.start is not None,
        past.call.abandoned,
        agent.name if agent else None,
        past.call.queue,
        past.call.hold_seconds,
    )


def test_history_covers_each_day_before_today_in_opening_hours() -> None:
    """Oldest first, every day before today present, nothing today, Linkedids unique."""
    calls = list(
        past_calls(
            random.Random(1),
            pbx="demo",
            spec=SPEC,
            agents=AGENTS,
            queues=("support", "sales"),
            days=5,
            calls_per_day=20,
            today=date(2026, 12, 3),
        )
    )
    starts = [datetime.fromtimestamp(past.call.started_at or 0, UTC) for past in calls]
    expected_days = [date(2026, 11, 28) + timedelta(days=back) for back in range(5)]
    assert (expected_days, True) == (
        sorted({start.date() for start in starts}),
        all(8 <= start.hour < 18 for start in starts),
    )
    assert (starts, len(calls)) == (sorted(starts), len({past.call.linkedid for past in calls}))
