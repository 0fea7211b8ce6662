"""Whether a FastAGI request should be surveyed at all.

Pure, so every rule is a table test. Issue-level policy (sampling, cooldown,
hours) grows here; what exists now protects the data: a survey must only ever
be offered to the caller, never to an agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.domain import CallRecord


@dataclass(frozen=True, slots=True)
class Decision:
    survey: bool
    reason: str


ELIGIBLE = Decision(survey=True, reason="eligible")


def decide(call: CallRecord, agi_channel: str, agi_uniqueid: str) -> Decision:
    """Refuse a request that comes from one of the call's agent legs.

    Queue option F() sends the *agent's* leg to the survey when the caller hangs
    up (fact 15): the request then names the agent's member channel. Scoring
    that would credit an agent with their own opinion of themselves.
    """
    if any(leg.channel and leg.channel == agi_channel for leg in call.agents):
        return Decision(survey=False, reason="agent_leg")
    if call.abandoned and not call.agents:
        return Decision(survey=False, reason="abandoned")
    return ELIGIBLE
