"""The demo's traffic mix: varied, reproducible, and every plan one the simulator can run."""

from __future__ import annotations

import random
from collections import Counter

from ivr.sim import Agent, CallPlan, CallResult, Flow, random_plan, run_traffic
from tests.sim.helpers import AgiFactory, PbxFactory

AGENTS = (
    Agent("Alice Martin", "PJSIP/alice"),
    Agent("Bruno Díaz", "PJSIP/bruno"),
    Agent("Chloé Bernard", "Local/chloe@agents/n"),
)


def test_the_same_seed_gives_the_same_calls() -> None:
    first = [random_plan(random.Random(3), AGENTS, ("support",)) for _ in range(3)]
    again = [random_plan(random.Random(3), AGENTS, ("support",)) for _ in range(3)]
    assert first == again


def test_the_mix_is_mostly_answered_with_every_kind_of_caller() -> None:
    rng = random.Random(11)
    plans = [random_plan(rng, AGENTS, ("support", "sales")) for _ in range(600)]
    flows = Counter(p.flow for p in plans)
    scripts = {str(t.presses[0].keys) for p in plans for t in p.survey if t.presses} | {
        "hangup" for p in plans for t in p.survey if t.hangup_at is not None
    }
    languages = {p.language for p in plans}
    assert flows[Flow.ANSWERED] > 400
    assert set(Flow) == set(flows)
    assert {"10", "1#", "hangup", "*"} <= scripts
    assert {"en", "es", "fa", "ru"} == languages


async def test_run_traffic_places_the_calls_and_reports_each(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port)
    seen: list[tuple[CallPlan, CallResult]] = []
    completed = await run_traffic(
        pbx, random.Random(5), 12, 4, 0.0, lambda plan, result: seen.append((plan, result))
    )
    assert (12, 12) == (completed, len({result.linkedid for _, result in seen}))
    assert 0 == len(pbx.state.channels)
