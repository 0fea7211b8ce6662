"""Which AGI requests are surveyed, as a table."""

from __future__ import annotations

import pytest

from ivr.domain import AgentLeg, CallRecord
from ivr.policy import Decision, decide

AGENT_ONE = AgentLeg(
    name="Agent One",
    interface="Local/agent1@agents/n",
    queue="support",
    channel="Local/agent1@agents-00000005;1",
    connected_at=0.0,
)
CALL = CallRecord(
    pbx="pbx1",
    linkedid="1795329453.8",
    caller_uniqueid="1795329453.9",
    caller_channel="Local/s@callers-00000004;2",
    agents=(AGENT_ONE,),
)


@pytest.mark.parametrize(
    ("call", "channel", "uniqueid", "expected"),
    [
        (CALL, "Local/s@callers-00000004;2", "1795329453.9", Decision(True, "eligible")),
        (CALL, "Local/agent1@agents-00000005;1", "1795329453.10", Decision(False, "agent_leg")),
        (
            CallRecord(pbx="pbx1", linkedid="1.1", partial=True),
            "PJSIP/sipp-00000001",
            "1.1",
            Decision(True, "eligible"),
        ),
        (
            CallRecord(pbx="pbx1", linkedid="1.1", abandoned=True),
            "PJSIP/sipp-00000001",
            "1.1",
            Decision(False, "abandoned"),
        ),
    ],
    ids=["caller leg", "agent leg via F()", "unknown call from channel data", "abandoned"],
)
def test_only_the_caller_leg_is_surveyed(
    call: CallRecord, channel: str, uniqueid: str, expected: Decision
) -> None:
    """A request from an agent's channel is refused; the caller's is surveyed."""
    assert expected == decide(call, channel, uniqueid)
