"""Believable call traffic for `ivr-survey demo` and the benchmarks.

The mix is meant to exercise the service the way a contact centre would:
most calls are answered and surveyed; some agents are better liked than
others (so per-agent NPS differs); callers type `10` as 1-0 or answer
`1#`, barge in during the question, press invalid keys, stay silent or hang
up half-way; a few abandon in the queue or are transferred; caller names
come in Persian, Russian and Spanish as well as English.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from ivr.sim.pbx import CallResult, SimulatedPbx
from ivr.sim.plan import TRANSFER_FLOWS, Agent, CallPlan, Flow, Turn

logger = logging.getLogger(__name__)

TRAFFIC_AGENTS = (
    Agent("Agent One", "Local/agent1@agents/n"),
    Agent("Agent Two", "Local/agent2@agents/n"),
    Agent("Agent Three", "Local/agent3@agents/n"),
    Agent("Agent Four", "Local/agent4@agents/n"),
)
TRAFFIC_QUEUES = ("support", "sales")
# How likely each agent (by position) is to get a promoter's score.
AGENT_LIKING = (0.85, 0.55, 0.3, 0.7, 0.45)
COMPANY_LIKING = 0.6
# A long wait in the queue costs goodwill: at HOLD_FOR_NO_GOODWILL seconds the
# company question has lost all of its promoters' share, the agent question
# a third of it (callers blame the company more than the agent for a wait).
HOLD_FOR_NO_GOODWILL = 150.0
CALLERS = (
    ("Customer", "en", "+1555"),
    ("John Smith", "en", "+1555"),
    ("Mary Johnson", "en", "+1312"),
    ("José García", "es", "+3461"),
    ("Ñandú Pérez", "es", "+3462"),
    ("Дмитрий Иванов", "ru", "+7916"),
    ("Анна Смирнова", "ru", "+7925"),
    ("محمد رضایی", "fa", "+98912"),
    ("زهرا احمدی", "fa", "+98935"),
    ("Ñandú محمد Жанна", "en", "+98912"),
    ("", "en", "+1555"),
)
FLOWS = (
    (Flow.ANSWERED, 0.80),
    (Flow.ABANDON_IN_QUEUE, 0.06),
    (Flow.CALLER_HANGS_UP_BRIDGED, 0.04),
    (Flow.BLIND_TRANSFER, 0.04),
    (Flow.ATTENDED_TRANSFER, 0.03),
    (Flow.ATTENDED_TRANSFER_DIRECT, 0.03),
)


def _score(rng: random.Random, liking: float) -> int:
    roll = rng.random()
    if roll < liking:
        return rng.choice((9, 10, 10))
    if roll < liking + (1 - liking) * 0.6:
        return rng.randint(0, 6)
    return rng.choice((7, 8))


def _answer(rng: random.Random, score: int) -> list[Turn]:
    """The turns one question takes: maybe a wasted attempt, then the score typed somehow."""
    at = rng.uniform(0.15, 1.2)
    text = str(score)
    style = rng.random()
    if style < 0.08:
        return [Turn.silence(), Turn.keys(text, at=at)]
    if style < 0.16:
        invalid = rng.choice(("*", "#", "11", "99"))
        return [Turn.keys(invalid, at=at), Turn.keys(text, at=rng.uniform(0.15, 1.2))]
    if style < 0.30:
        return [Turn.keys(text, at=0.05, gap=rng.uniform(0.1, 0.3))]
    if score == 10 and style < 0.55:
        return [Turn.keys("10", at=at, gap=rng.uniform(0.15, 0.4))]
    if score == 1 and style < 0.65:
        return [Turn.keys("1#", at=at)]
    return [Turn.keys(text, at=at, gap=0.15)]


def _survey(rng: random.Random, agent_liking: float, hold_seconds: int) -> tuple[Turn, ...]:
    lost = min(1.0, hold_seconds / HOLD_FOR_NO_GOODWILL)
    roll = rng.random()
    if roll < 0.05:
        return (Turn.hangup(at=rng.uniform(0.1, 1.5)),)
    first = _answer(rng, _score(rng, agent_liking * (1 - lost / 3)))
    if roll < 0.10:
        return (*first, Turn.hangup(at=rng.uniform(0.1, 1.5)))
    if roll < 0.14:
        return (*first, Turn.silence(), Turn.silence(), Turn.silence())
    return (*first, *_answer(rng, _score(rng, COMPANY_LIKING * (1 - lost))))


def random_plan(rng: random.Random, agents: Sequence[Agent], queues: Sequence[str]) -> CallPlan:
    """One call of the demo's mix; deterministic for a given `rng` state."""
    if not agents or not queues:
        raise ValueError("random_plan needs at least one agent and one queue")
    flow = rng.choices([f for f, _ in FLOWS], weights=[w for _, w in FLOWS])[0]
    first_index = rng.randrange(len(agents))
    others = [i for i in range(len(agents)) if i != first_index] or [first_index]
    second_index = rng.choice(others)
    chosen = (agents[first_index], agents[second_index])
    credited = second_index if flow in TRANSFER_FLOWS else first_index
    name, language, prefix = rng.choice(CALLERS)
    number = prefix + "".join(rng.choice("0123456789") for _ in range(7))
    queue = rng.choice(tuple(queues))
    transfer_queue = rng.choice([q for q in queues if q != queue] or [queue])
    hold = rng.randint(5, 120) if flow is Flow.ABANDON_IN_QUEUE else rng.randint(0, 90)
    return CallPlan(
        queue=queue,
        agents=chosen,
        transfer_queue=transfer_queue,
        flow=flow,
        caller_number=number,
        caller_name=name,
        caller_kind="pjsip" if rng.random() < 0.15 else "local",
        language=language,
        hold_seconds=hold,
        talk_seconds=rng.randint(30, 600),
        set_vars=rng.random() < 0.8,
        survey=_survey(rng, AGENT_LIKING[credited % len(AGENT_LIKING)], hold),
        agent_leg_survey=flow is Flow.CALLER_HANGS_UP_BRIDGED and rng.random() < 0.3,
    )


async def run_traffic(  # noqa: PLR0917 - the signature the demo and benchmarks call
    pbx: SimulatedPbx,
    rng: random.Random,
    calls: int | None,
    concurrency: int,
    pause: float,
    on_result: Callable[[CallPlan, CallResult], None] | None = None,
    *,
    agents: Sequence[Agent] = TRAFFIC_AGENTS,
    queues: Sequence[str] = TRAFFIC_QUEUES,
) -> int:
    """Place `calls` random calls (forever if None), at most `concurrency` at a time.

    A new call starts `pause` seconds after the previous one. Returns the
    number of calls that completed; a call that fails is logged and skipped
    so that one bad plan does not end a demo.
    """
    slots = asyncio.Semaphore(max(1, concurrency))
    running: set[asyncio.Task[None]] = set()
    completed = 0

    async def one(plan: CallPlan) -> None:
        nonlocal completed
        try:
            result = await pbx.place_call(plan)
        except Exception:
            logger.exception("simulated call failed: %s", plan)
            return
        finally:
            slots.release()
        completed += 1
        if on_result is not None:
            on_result(plan, result)

    placed = 0
    try:
        while calls is None or placed < calls:
            await slots.acquire()
            task = asyncio.create_task(one(random_plan(rng, agents, queues)))
            running.add(task)
            task.add_done_callback(running.discard)
            placed += 1
            if pause > 0:
                await asyncio.sleep(pause)
        if running:
            await asyncio.gather(*running)
    finally:
        for task in tuple(running):
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return completed
