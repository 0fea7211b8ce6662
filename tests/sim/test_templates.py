"""Captures → call templates: every identifier becomes a hole, hold and talk become the plan's."""

from __future__ import annotations

import re

import pytest

from ivr.sim.plan import CallPlan, Flow
from ivr.sim.templates import CAPTURES, TemplateLibrary, Token, capture_for

CAPTURED_ID = re.compile(r"\b179533?\d{4}\.\d+\b|-[0-9a-f]{8}(?:;[12])?\b")


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_no_captured_identifier_is_left_in_a_replayed_value(
    library: TemplateLibrary, name: str
) -> None:
    """Uniqueids and channel numbers only survive in the survey events the replay drops."""
    capture = library.capture(name)
    left = [
        (event.name, key, part)
        for event in capture.events
        if event.name not in ("AGIExecStart", "AGIExecEnd", "RTCPSent")
        for key, value in event.headers
        for part in value
        if isinstance(part, str) and CAPTURED_ID.search(part) and not part.startswith("agi://")
    ]
    assert [] == left


def test_channels_are_known_by_role(library: TemplateLibrary) -> None:
    capture = library.capture("ami-attended-transfer.txt")
    roles = {e.channel for e in capture.events if e.channel}
    expected = {"caller;1", "caller;2", "agent0;1", "agent0;2", "agent1;1", "agent1;2"}
    assert expected | {"consult;1", "consult;2"} == roles


def test_queue_caller_join_keeps_its_captured_header_names(library: TemplateLibrary) -> None:
    event = next(
        e
        for e in library.capture("ami-queue-call-survey.txt").events
        if e.name == "QueueCallerJoin"
    )
    expected = [Token("chan", "caller;2"), Token("queue", "first"), Token("uid", "caller;2")]
    actual = [dict(event.headers)[k][0] for k in ("Channel", "Queue", "Uniqueid")]
    assert expected == actual


@pytest.mark.parametrize(
    ("flow", "hold", "talk"),
    [(Flow.ANSWERED, 4, 95), (Flow.ANSWERED, 0, 1), (Flow.ABANDON_IN_QUEUE, 30, 0)],
)
def test_hold_and_talk_stretches_last_the_plans_seconds(
    library: TemplateLibrary, flow: Flow, hold: int, talk: int
) -> None:
    """QueueCallerJoin→AgentConnect lasts hold_seconds, AgentConnect→AgentComplete talk_seconds."""
    plan = CallPlan(flow=flow, hold_seconds=hold, talk_seconds=talk)
    template = library.flow(plan)
    clock = 0.0
    times: dict[str, float] = {}
    for item in template.pre:
        clock += item.gap(plan)
        times.setdefault(item.event.name, clock)
    if flow is Flow.ABANDON_IN_QUEUE:
        assert hold == pytest.approx(times["QueueCallerAbandon"] - times["QueueCallerJoin"])
    else:
        measured = (
            times["AgentConnect"] - times["QueueCallerJoin"],
            times["AgentComplete"] - times["AgentConnect"],
        )
        assert (hold, talk) == pytest.approx(measured)


def test_blind_transfer_picks_the_capture_by_set_vars() -> None:
    expected = ["ami-blind-transfer-setvars.txt", "ami-blind-transfer.txt"]
    actual = [capture_for(CallPlan(flow=Flow.BLIND_TRANSFER, set_vars=s)) for s in (True, False)]
    assert expected == actual


def test_pjsip_caller_of_a_local_capture_has_one_channel(library: TemplateLibrary) -> None:
    """Derived (not captured): the ;1 half's events go, ;2 becomes the PJSIP channel."""
    template = library.flow(CallPlan(flow=Flow.BLIND_TRANSFER, caller_kind="pjsip"))
    callers = {
        t.event.channel for t in template.pre if (t.event.channel or "").startswith("caller")
    }
    assert ({"caller"}, "caller", None) == (callers, template.agi_channel, template.phone)


def test_queue_without_set_vars_loses_member_variables(library: TemplateLibrary) -> None:
    """Fact 13: MEMBERNAME/QUEUENAME only with setinterfacevar/setqueuevar."""
    template = library.flow(CallPlan(set_vars=False))
    variables = {t.event.text("Variable") for t in template.pre if t.event.name == "VarSet"}
    assert ("QUEUESTATUS" in variables, "MEMBERNAME" in variables) == (True, False)
