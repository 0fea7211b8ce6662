"""Which Asterisk 22 captures the simulator replays, and what their literals mean.

A capture's queue, member and caller strings are read off the capture and
its configs once, here, so tokenizing (ivr.sim.captures) needs no guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ivr.sim.plan import CallPlan, Flow

FIRST_QUEUE = "first"
TRANSFER_QUEUE = "transfer"


@dataclass(frozen=True)
class CaptureInfo:
    """What a capture's literal strings mean (read off the capture and its configs)."""

    queues: Mapping[str, str]
    agents: Mapping[str, int]
    caller_number: str = "+15550001111"
    caller_name: str = "Customer"
    agi: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", MappingProxyType(dict(self.queues)))
        object.__setattr__(self, "agents", MappingProxyType(dict(self.agents)))


CAPTURES: Mapping[str, CaptureInfo] = MappingProxyType(
    {
        "ami-queue-call-survey.txt": CaptureInfo(
            {"support": FIRST_QUEUE}, {"agent1": 0}, agi="fastagi-session-complete.txt"
        ),
        "ami-sip-call-survey.txt": CaptureInfo(
            {"support": FIRST_QUEUE},
            {"agent1": 0},
            caller_number="+15550002222",
            agi="fastagi-session-sip.txt",
        ),
        "ami-caller-abandons-queue.txt": CaptureInfo({"slow": FIRST_QUEUE}, {"agent-slow": 0}),
        "ami-caller-hangs-up-while-bridged.txt": CaptureInfo(
            {"support": FIRST_QUEUE},
            {"agent1": 0},
            agi="fastagi-session-agent-leg-via-F-option.txt",
        ),
        "ami-blind-transfer.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-blind-transfer.txt",
        ),
        "ami-blind-transfer-setvars.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales-vars": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-blind-transfer-setvars.txt",
        ),
        "ami-attended-transfer.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-attended-transfer.txt",
        ),
        "ami-attended-transfer-direct.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-attended-transfer-direct.txt",
        ),
        "ami-caller-abandons-survey.txt": CaptureInfo({"support": FIRST_QUEUE}, {"agent1": 0}),
        "ami-caller-abandons-survey-idle.txt": CaptureInfo({"support": FIRST_QUEUE}, {"agent1": 0}),
        "ami-asterisk-restart-agi-closes.txt": CaptureInfo({"support": FIRST_QUEUE}, {"agent1": 0}),
    }
)
HANGUP_DURING_COMMAND = "ami-caller-abandons-survey.txt"
HANGUP_WHILE_IDLE = "ami-caller-abandons-survey-idle.txt"
RESTART = "ami-asterisk-restart-agi-closes.txt"
SIP_ENV = "fastagi-session-sip.txt"


def capture_for(plan: CallPlan) -> str:
    """The capture a plan replays (pjsip variants of other flows derive from the Local ones)."""
    if plan.flow is Flow.ANSWERED:
        return (
            "ami-sip-call-survey.txt"
            if plan.caller_kind == "pjsip"
            else ("ami-queue-call-survey.txt")
        )
    if plan.flow is Flow.BLIND_TRANSFER:
        return "ami-blind-transfer-setvars.txt" if plan.set_vars else "ami-blind-transfer.txt"
    return {
        Flow.ABANDON_IN_QUEUE: "ami-caller-abandons-queue.txt",
        Flow.CALLER_HANGS_UP_BRIDGED: "ami-caller-hangs-up-while-bridged.txt",
        Flow.ATTENDED_TRANSFER: "ami-attended-transfer.txt",
        Flow.ATTENDED_TRANSFER_DIRECT: "ami-attended-transfer-direct.txt",
    }[plan.flow]
