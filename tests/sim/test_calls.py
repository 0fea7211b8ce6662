"""Replayed calls on AMI: the captured sequences, with this call's identities and times."""

from __future__ import annotations

import asyncio
import re

import pytest

from ivr.sim import Agent, CallPlan, Flow
from ivr.sim.transcript import ami_events, read_ami
from tests.sim.helpers import (
    AgiFactory,
    AmiClient,
    Message,
    PbxFactory,
    call_event_names,
    capture_sequence,
    events,
    message_sequence,
    names,
    value,
)

SLOW_AGENT = Agent("Slow Agent", "Local/agent-slow@agents/n")


async def record(
    make_pbx: PbxFactory, make_agi: AgiFactory, plan: CallPlan, **options: object
) -> tuple[list[Message], str]:
    """Every event a read-all session received for one call, and the call's Linkedid."""
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port, **options)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login()
    await client.message()
    await client.message()
    result = await pbx.place_call(plan)
    return events(await client.drain()), result.linkedid


@pytest.mark.parametrize(
    ("plan", "capture"),
    [
        (CallPlan(), "ami-queue-call-survey.txt"),
        (CallPlan(caller_kind="pjsip"), "ami-sip-call-survey.txt"),
        (CallPlan(flow=Flow.ABANDON_IN_QUEUE), "ami-caller-abandons-queue.txt"),
        (
            CallPlan(flow=Flow.CALLER_HANGS_UP_BRIDGED, agent_leg_survey=True),
            "ami-caller-hangs-up-while-bridged.txt",
        ),
        (CallPlan(flow=Flow.BLIND_TRANSFER), "ami-blind-transfer-setvars.txt"),
        (CallPlan(flow=Flow.BLIND_TRANSFER, set_vars=False), "ami-blind-transfer.txt"),
        (CallPlan(flow=Flow.ATTENDED_TRANSFER), "ami-attended-transfer.txt"),
        (CallPlan(flow=Flow.ATTENDED_TRANSFER_DIRECT), "ami-attended-transfer-direct.txt"),
    ],
    ids=lambda p: p.flow.value if isinstance(p, CallPlan) else p,
)
async def test_call_events_follow_the_capture_name_for_name(
    make_pbx: PbxFactory, make_agi: AgiFactory, plan: CallPlan, capture: str
) -> None:
    """Same events, same order, as the capture - minus the capture driver's OriginateResponse,
    the login's own events, and the survey events (live in the simulator, see test_agi)."""
    messages, _ = await record(make_pbx, make_agi, plan)
    expected = call_event_names(capture_sequence(capture))
    assert expected == call_event_names(message_sequence(messages))


@pytest.mark.parametrize("name", ["QueueCallerJoin", "AgentConnect", "AgentComplete", "Hangup"])
async def test_key_events_carry_the_captured_header_names_in_order(
    make_pbx: PbxFactory, make_agi: AgiFactory, name: str
) -> None:
    messages, _ = await record(make_pbx, make_agi, CallPlan())
    captured = next(e for e in ami_events("ami-queue-call-survey.txt") if e.event == name)
    replayed = next(m for m in messages if m[0][1] == name)
    assert [k for k, _ in captured.headers] == names(replayed)


async def test_reported_hold_and_talk_are_the_plans_while_the_call_is_compressed(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """HoldTime/RingTime/TalkTime in whole seconds (fact 8) from the plan, not the wall clock."""
    plan = CallPlan(hold_seconds=4, talk_seconds=95)
    loop = asyncio.get_running_loop()
    started = loop.time()
    messages, _ = await record(make_pbx, make_agi, plan)
    elapsed = loop.time() - started
    connect = next(m for m in messages if m[0][1] == "AgentConnect")
    complete = next(m for m in messages if m[0][1] == "AgentComplete")
    durations = [value(connect, "HoldTime"), value(connect, "RingTime")]
    durations += [
        value(complete, "HoldTime"),
        value(complete, "TalkTime"),
        value(complete, "Reason"),
    ]
    assert ["4", "4", "4", "95", "agent"] == durations
    assert elapsed < 5.0


async def test_identifiers_are_this_calls_own(make_pbx: PbxFactory, make_agi: AgiFactory) -> None:
    """Uniqueids `<epoch>.<n>` from 0, Linkedid = the first channel's, fresh channel numbers,
    and the plan's caller, queue and member everywhere fact 50 lists them."""
    plan = CallPlan(
        queue="billing",
        agents=(Agent("Chloé Bernard", "Local/chloe@agents/n"),),
        caller_number="+989121234567",
        caller_name="Ñandú محمد Жанна",
        language="fa",
    )
    messages, linkedid = await record(make_pbx, make_agi, plan, clock=lambda: 1795400000.5)
    text = "\n".join(f"{k}: {v}" for m in messages for k, v in m)
    first = next(m for m in messages if m[0][1] == "Newchannel")
    connect = next(m for m in messages if m[0][1] == "AgentConnect")
    linked = {value(m, "Linkedid") for m in messages if value(m, "Linkedid")}
    expected = (
        "1795400000.0",
        {"1795400000.0"},
        "Local/s@callers-00000000;1",
        ("billing", "Chloé Bernard", "Local/chloe@agents/n", "Local/chloe@agents-00000001;1"),
        ("+989121234567", "Ñandú محمد Жанна", "fa"),
    )
    actual = (
        linkedid,
        linked,
        value(first, "Channel"),
        tuple(value(connect, k) for k in ("Queue", "MemberName", "Interface", "DestChannel")),
        tuple(value(connect, k) for k in ("CallerIDNum", "CallerIDName", "Language")),
    )
    assert expected == actual
    assert 'CallerID: "Ñandú محمد Жанна" <+989121234567>' in text
    assert "CallerIDnum: +989121234567" in text
    assert not re.search(r"17953[23]\d{4}\.\d+|support|Agent One|Customer|\+1555", text)


async def test_resync_actions_are_shaped_like_the_capture(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """One caller bridged, one waiting in `slow`: the six resync actions of
    ami-resync-actions.txt answer with the same events and header names."""
    _, port = await make_agi()
    queues = {
        "support": [Agent("Agent One", "Local/agent1@agents/n")],
        "slow": [SLOW_AGENT],
        "sales": [Agent("Agent Two", "Local/agent2@agents/n")],
    }
    pbx = await make_pbx(agi_port=port, queues=queues, time_scale=0.002)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    bridged = pbx.start_call(CallPlan(talk_seconds=1000))
    waiting = pbx.start_call(
        CallPlan(queue="slow", agents=(SLOW_AGENT,), flow=Flow.ABANDON_IN_QUEUE, hold_seconds=1000)
    )
    await asyncio.sleep(0.3)
    caller = next(
        c for c in pbx.state.channels if c.startswith("Local/s@callers-") and c.endswith(";2")
    )
    bridge = next(iter(pbx.state.bridges))
    actions = [
        [("Action", "QueueStatus"), ("ActionID", "4")],
        [("Action", "QueueSummary"), ("ActionID", "5")],
        [("Action", "CoreShowChannels"), ("ActionID", "6")],
        [("Action", "Status"), ("ActionID", "7")],
        [
            ("Action", "Status"),
            ("ActionID", "8"),
            ("Channel", caller),
            ("Variables", "MEMBERNAME,MEMBERINTERFACE,QUEUENAME,CDR(linkedid)"),
        ],
        [("Action", "BridgeList"), ("ActionID", "9")],
        [("Action", "BridgeInfo"), ("ActionID", "10"), ("BridgeUniqueid", bridge)],
    ]
    replies = [await client.action(*a) for a in actions]
    captured = _captured_replies()
    assert [_shape(r) for r in captured] == [_shape(r) for r in replies]
    variables = [v for k, v in replies[4][1] if k == "Variable"]
    assert [
        "MEMBERNAME=Agent One",
        "MEMBERINTERFACE=Local/agent1@agents/n",
        "QUEUENAME=support",
        f"CDR(linkedid)={pbx.state.channels[caller].linkedid}",
    ] == variables
    client.close()
    bridged.cancel()
    waiting.cancel()
    await asyncio.gather(bridged, waiting, return_exceptions=True)


def _captured_replies() -> list[list[Message]]:
    """The capture's replies to the same actions (BridgeList/Info from the listener capture)."""
    groups: list[list[Message]] = []
    for source, wanted in (
        ("ami-resync-actions.txt", ("4", "5", "6", "7", "8")),
        ("ami-least-privilege-listener.txt", ("8", "9")),
    ):
        messages = [m for m in read_ami(source) if not m.sent and m.connection == 1]
        for suffix in wanted:
            groups.append(
                [list(m.headers) for m in messages if m.get("ActionID").endswith(f"/1/{suffix}")]
            )
    return groups


def _shape(reply: list[Message]) -> list[tuple[str, ...]]:
    """Each message's Response/Event value and header names (Variable lines counted apart)."""
    return [(message[0][1], *(k for k, _ in message if k != "Variable")) for message in reply]


async def test_caller_cdrs_split_where_the_agent_left_the_bridge(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """Fact 25: one Cdr for the queue part (hold + talk) and one for the survey part.

    Both are posted at hang-up; the first ends when the agent left the bridge,
    so a long survey does not lengthen it.
    """

    async def slow_survey(connection: object) -> None:
        await asyncio.sleep(1.2)

    _, port = await make_agi(slow_survey)
    pbx = await make_pbx(agi_port=port)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="cdr")
    result = await pbx.place_call(CallPlan(hold_seconds=4, talk_seconds=95))
    cdrs = [m for m in events(await client.drain()) if value(m, "Channel") == result.caller_channel]
    durations = [(value(m, "Duration"), value(m, "DestinationChannel") != "") for m in cdrs]
    assert [("99", True), ("1", False)] == durations
