"""Past days of calls for `ivr-survey demo`, from the same callers and score model as live traffic.

A dashboard whose data all comes from today shows a one-point trend and flags
every agent as "too few". The demo therefore lays down a history first: each
past call is a `random_plan` of the live mix (`ivr.sim.traffic`), and its
survey is what the service's own survey machine (`ivr.core.survey`) makes of that
caller's keypresses. What the simulated PBX's AMI and FastAGI add on a live
call (timings, channel names) is reduced here to what is stored: the call as
the tracker would record it, the policy decision, the survey row, its answers
and its status. Nothing here does IO; the demo writes the result through the
service's writer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ivr.core import survey
from ivr.core.domain import AgentLeg, Answer, CallRecord, HangupSide, SurveyStart, SurveyStatus
from ivr.sim.plan import TRANSFER_FLOWS, Agent, CallPlan, Flow, Turn
from ivr.sim.traffic import random_plan

# Contact-centre hours (UTC) in which the past calls fall.
OPENING = time(8, 0)
CLOSING_HOURS = 10
# Seconds the survey takes per question, for the stored answer times.
SECONDS_PER_QUESTION = 9
# Linkedids of generated calls start here, far from the simulator's live ones
# (which count up from the epoch seconds of today).
HISTORY_LINKEDID_BASE = 1_000_000_000


@dataclass(frozen=True, slots=True)
class PastCall:
    """One generated call as the service would have stored it.

    `decision` None: the call never reached the survey's AGI (abandoned, or
    the caller hung up on the agent), so no policy decision was made.
    """

    call: CallRecord
    decision: str | None
    start: SurveyStart | None
    answers: tuple[Answer, ...]
    status: SurveyStatus | None
    finished_at: datetime | None


def past_calls(
    rng: random.Random,
    *,
    pbx: str,
    spec: survey.SurveySpec,
    agents: Sequence[Agent],
    queues: Sequence[str],
    days: int,
    calls_per_day: int,
    today: date,
) -> Iterator[PastCall]:
    """About `calls_per_day` calls on each of the `days` days before `today`, oldest first."""
    number = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        opening = datetime.combine(day, OPENING, tzinfo=UTC)
        count = max(0, round(calls_per_day * rng.uniform(0.8, 1.2)))
        moments = sorted(rng.uniform(0, CLOSING_HOURS * 3600) for _ in range(count))
        for offset in moments:
            number += 1
            plan = random_plan(rng, agents, queues)
            linkedid = f"{HISTORY_LINKEDID_BASE + number}.{number}"
            yield past_call(
                plan, pbx=pbx, linkedid=linkedid, at=opening + timedelta(seconds=offset), spec=spec
            )


def past_call(
    plan: CallPlan, *, pbx: str, linkedid: str, at: datetime, spec: survey.SurveySpec
) -> PastCall:
    """The stored outcome of one planned call that started at `at`."""
    call = _record(plan, pbx=pbx, linkedid=linkedid, at=at)
    if plan.flow is Flow.ABANDON_IN_QUEUE:
        return PastCall(call, None, None, (), None, None)
    if plan.flow is Flow.CALLER_HANGS_UP_BRIDGED:
        # Only queue option F() sends anyone to the survey: the agent, refused.
        decision = "agent_leg" if plan.agent_leg_survey else None
        return PastCall(call, decision, None, (), None, None)
    assert call.ended_at is not None
    started_at = datetime.fromtimestamp(call.ended_at, UTC)
    start = SurveyStart(
        pbx=pbx,
        linkedid=linkedid,
        channel=call.caller_channel or "",
        uniqueid=call.caller_uniqueid or linkedid,
        language=plan.language,
        started_at=started_at,
    )
    outcomes, status = run_survey(spec, plan.survey)
    answers = tuple(
        Answer(
            question=outcome.question,
            value=outcome.value,
            attempts=outcome.attempts,
            answered_at=started_at + timedelta(seconds=SECONDS_PER_QUESTION * (index + 1)),
        )
        for index, outcome in enumerate(outcomes)
    )
    finished_at = started_at + timedelta(seconds=SECONDS_PER_QUESTION * (len(answers) + 1))
    return PastCall(call, "eligible", start, answers, status, finished_at)


def run_survey(
    spec: survey.SurveySpec, turns: Sequence[Turn]
) -> tuple[tuple[survey.Outcome, ...], SurveyStatus]:
    """Drive the service's survey machine with the caller's turns.

    As on the simulated PBX, each prompt that takes keys takes the caller's
    next turn, the intro excepted (the caller listens to it); its keys are
    then read one by one by that prompt and the digit waits after it.
    """
    caller = _Caller(turns)
    transition = survey.start(spec)
    stored: list[survey.Outcome] = list(transition.store)
    while not isinstance(transition.command, survey.Finish):
        reply = caller.reply(
            transition.command, listening=transition.state.phase is survey.Phase.INTRO
        )
        transition = survey.step(transition.state, reply)
        stored.extend(transition.store)
    return tuple(stored), transition.command.status


class _Caller:
    def __init__(self, turns: Sequence[Turn]) -> None:
        self._turns = list(turns)
        self._keys: list[str] = []
        self._hung_up = False

    def reply(self, command: survey.Command, *, listening: bool) -> survey.Reply:
        if isinstance(command, survey.Play) and command.interruptible and not listening:
            self._take_turn()
        elif not isinstance(command, survey.Play | survey.WaitDigit):
            return survey.PlayedOut()
        if self._keys and (isinstance(command, survey.WaitDigit) or command.interruptible):
            return survey.Digit(self._keys.pop(0))
        if self._hung_up:
            return survey.HungUp()
        return survey.Timeout() if isinstance(command, survey.WaitDigit) else survey.PlayedOut()

    def _take_turn(self) -> None:
        self._keys = []
        if not self._turns:
            return
        turn = self._turns.pop(0)
        self._keys = [key for press in turn.presses for key in press.keys]
        self._hung_up = turn.hangup_at is not None


def _record(plan: CallPlan, *, pbx: str, linkedid: str, at: datetime) -> CallRecord:
    """The call as AMI tracking records it: the last queue leg names queue and hold."""
    started = at.timestamp()
    caller = (plan.caller_number, plan.caller_name or None)
    if plan.flow is Flow.ABANDON_IN_QUEUE:
        return CallRecord(
            pbx=pbx,
            linkedid=linkedid,
            caller_uniqueid=linkedid,
            caller_channel=f"PJSIP/customer-{linkedid}",
            caller_number=caller[0],
            caller_name=caller[1],
            queue=plan.queue,
            hold_seconds=plan.hold_seconds,
            abandoned=True,
            started_at=started,
            ended_at=started + plan.hold_seconds,
        )
    answered = started + plan.hold_seconds
    legs = _agent_legs(plan, linkedid=linkedid, answered=answered)
    from_queue = [leg for leg in legs if leg.queue is not None][-1]
    talk = sum(leg.talk_seconds or 0 for leg in legs)
    return CallRecord(
        pbx=pbx,
        linkedid=linkedid,
        caller_uniqueid=linkedid,
        caller_channel=f"PJSIP/customer-{linkedid}",
        caller_number=caller[0],
        caller_name=caller[1],
        queue=from_queue.queue,
        agents=tuple(legs),
        hold_seconds=from_queue.hold_seconds,
        talk_seconds=talk,
        ended_by=_ender(plan),
        transferred=plan.flow in TRANSFER_FLOWS,
        started_at=started,
        answered_at=answered,
        ended_at=answered + talk,
    )


def _agent_legs(plan: CallPlan, *, linkedid: str, answered: float) -> list[AgentLeg]:
    """The agents who talked: one, or two after a transfer (to a queue or direct)."""
    first = AgentLeg(
        name=plan.agents[0].name,
        interface=plan.agents[0].interface,
        queue=plan.queue,
        channel=f"{plan.agents[0].interface}-{linkedid};1",
        connected_at=answered,
        hold_seconds=plan.hold_seconds,
        ring_seconds=0,
        talk_seconds=plan.talk_seconds,
        ended_by=HangupSide.TRANSFER if plan.flow in TRANSFER_FLOWS else _ender(plan),
    )
    legs = [first]
    if plan.flow in TRANSFER_FLOWS:
        second_queue = None if plan.flow is Flow.ATTENDED_TRANSFER_DIRECT else plan.transfer_queue
        legs.append(
            AgentLeg(
                name=plan.agents[1].name,
                interface=plan.agents[1].interface,
                queue=second_queue,
                channel=f"{plan.agents[1].interface}-{linkedid};1",
                connected_at=answered + plan.talk_seconds,
                hold_seconds=0 if second_queue else None,
                ring_seconds=0,
                talk_seconds=plan.talk_seconds,
                ended_by=HangupSide.AGENT,
            )
        )
    return legs


def _ender(plan: CallPlan) -> HangupSide:
    return HangupSide.CALLER if plan.flow is Flow.CALLER_HANGS_UP_BRIDGED else HangupSide.AGENT
