"""The simulated manager interface over TCP, checked against the lab captures."""

from __future__ import annotations

import asyncio
import re
import time

from ivr.sim import CallPlan, Flow
from ivr.sim.transcript import AmiMessage, read_ami
from tests.sim.helpers import (
    BANNER,
    AgiFactory,
    AmiClient,
    PbxFactory,
    events,
    first_event,
    names,
    value,
)

MAIN = read_ami("ami-queue-call-survey.txt")
RESYNC = read_ami("ami-resync-actions.txt")
LISTENER_CAPTURE = read_ami("ami-least-privilege-listener.txt")


def received(messages: list[AmiMessage], kind: str) -> list[AmiMessage]:
    return [m for m in messages if not m.sent and m.kind == kind]


async def test_login_is_answered_like_asterisk(make_pbx: PbxFactory) -> None:
    """Banner, `Authentication accepted`, then FullyBooted and SuccessfulAuth (fact 2)."""
    pbx = await make_pbx()
    client = await AmiClient.connect(pbx.ami_port)
    response = await client.login()
    booted = await client.message()
    auth = await client.message()
    captured_auth = first_event(MAIN, "SuccessfulAuth")
    expected: tuple[object, ...] = (
        BANNER,
        [("Response", "Success"), ("ActionID", "login-1"), ("Message", "Authentication accepted")],
        [
            ("Event", "FullyBooted"),
            ("Privilege", "system,all"),
            ("Uptime", "144"),
            ("LastReload", "144"),
            ("Status", "Fully Booted"),
        ],
        [k for k, _ in captured_auth.headers],
        "ivr",
    )
    assert expected == (client.banner, response, booted, names(auth), value(auth, "AccountID"))
    client.close()


async def test_wrong_secret_is_refused_after_the_delay_and_the_socket_closed(
    make_pbx: PbxFactory,
) -> None:
    """manager.c: sleep, `Response: Error` / `Authentication failed`, then the session ends."""
    pbx = await make_pbx(login_failure_delay=0.3)
    client = await AmiClient.connect(pbx.ami_port)
    started = time.monotonic()
    response = await client.login(secret="wrong")
    waited = time.monotonic() - started
    closed = await client.rest(timeout=2.0)
    expected: tuple[object, ...] = (
        [("Response", "Error"), ("ActionID", "login-1"), ("Message", "Authentication failed")],
        [],
        [("ivr", False)],
    )
    actual = (response, closed, [(u, ok) for u, ok, _ in pbx.login_attempts])
    assert expected == actual
    assert waited >= 0.3


async def test_logoff_says_goodbye_and_closes(make_pbx: PbxFactory) -> None:
    pbx = await make_pbx()
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    messages = await client.drain()
    captured = next(m for m in LISTENER_CAPTURE if m.get("Response") == "Goodbye")
    expected = [
        [("Response", "Goodbye"), ("ActionID", "logoff"), ("Message", "Thanks for all the fish.")]
    ]
    assert expected == [m for m in messages if m[0][0] == "Response"]
    assert ["Response", "ActionID", "Message"] == [k for k, _ in captured.headers]


async def test_ping_pong_with_a_microsecond_timestamp(make_pbx: PbxFactory) -> None:
    pbx = await make_pbx(clock=lambda: 1795332582.988314)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    response = await client.action(("Action", "Ping"), ("ActionID", "p1"))
    captured = next(m for m in RESYNC if m.get("Ping") == "Pong")
    expected = [
        [
            ("Response", "Success"),
            ("ActionID", "p1"),
            ("Ping", "Pong"),
            ("Timestamp", "1795332582.988314"),
        ]
    ]
    assert expected == response
    assert [k for k, _ in captured.headers] == names(response[0])
    client.close()


async def test_unknown_action_and_actions_before_login(make_pbx: PbxFactory) -> None:
    """Guesses from manager.c: `Invalid/unknown command`; `Permission denied` before Login."""
    pbx = await make_pbx()
    early = await AmiClient.connect(pbx.ami_port)
    await early.read_banner()
    denied = await early.action(("Action", "QueueStatus"), ("ActionID", "x"))
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    unknown = await client.action(("Action", "MakeCoffee"), ("ActionID", "y"))
    expected = [
        [("Response", "Error"), ("ActionID", "x"), ("Message", "Permission denied")],
        [("Response", "Error"), ("ActionID", "y"), ("Message", "Invalid/unknown command")],
    ]
    assert expected == [denied[0], unknown[0]]
    assert ["QueueStatus", "Login", "MakeCoffee"] == [a["Action"] for a in pbx.actions_received]
    early.close()
    client.close()


async def test_empty_write_may_list_queues_and_bridges_but_not_channels(
    make_pbx: PbxFactory,
) -> None:
    """Fact 43: CoreShowChannels and Status are denied, and security readers hear about it."""
    pbx = await make_pbx()
    admin = await AmiClient.connect(pbx.ami_port)
    await admin.login(events="security")
    listener = await AmiClient.connect(pbx.ami_port)
    await listener.login("ivrlistener", "ivrlistener")
    answers = {}
    for action in ("QueueStatus", "QueueSummary", "CoreShowChannels", "Status", "BridgeList"):
        reply = await listener.action(("Action", action), ("ActionID", action))
        answers[action] = value(reply[0], "Response"), value(reply[0], "Message")
    refused = await admin.until(lambda m: value(m, "Event") == "RequestNotAllowed")
    captured_answers = {
        "CoreShowChannels": ("Error", "Permission denied"),
        "Status": ("Error", "Permission denied"),
        "QueueStatus": ("Success", "Queue status will follow"),
        "QueueSummary": ("Success", "Queue summary will follow"),
        "BridgeList": ("Success", "Bridge listing will follow"),
    }
    captured_refusal = first_event(
        read_ami("ami-least-privilege-same-call-read-all.txt"), "RequestNotAllowed"
    )
    assert captured_answers == answers
    assert ([k for k, _ in captured_refusal.headers], "Action: CoreShowChannels") == (
        names(refused),
        value(refused, "RequestType"),
    )
    admin.close()
    listener.close()


async def test_least_privilege_listener_sees_the_captured_twenty_two_events(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """Read classes plus exclude filters leave exactly the 22 events of fact 44.

    Compared as a multiset: the listener capture and ami-queue-call-survey.txt
    (which the simulator replays) are two runs, and the agent leg's Hangup and
    AgentComplete came out in a different order in each.
    """
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login("ivrlistener", "ivrlistener")
    await pbx.place_call(CallPlan())
    seen = [m[0][1] for m in events(await client.drain())]
    captured = [m.event for m in received(LISTENER_CAPTURE, "Event") if not m.get("ActionID")]
    assert (22, sorted(captured)) == (len(seen), sorted(seen))


async def test_events_mask_and_read_classes_filter_by_privilege(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """`Events: off` gets no call event, `Events: agent` only agent-class ones, as manager.c.

    FullyBooted is the login's own message (astman_append), not a filtered event.
    """
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port)
    silent = await AmiClient.connect(pbx.ami_port)
    await silent.login(events="off")
    agents = await AmiClient.connect(pbx.ami_port)
    await agents.login(events="agent")
    await pbx.place_call(CallPlan())
    privileges = {value(m, "Privilege") for m in events(await agents.drain())}
    quiet = [m[0][1] for m in events(await silent.drain())]
    assert (["FullyBooted"], {"agent,all", "system,all"}) == (quiet, privileges)


async def test_every_ami_line_ends_with_crlf(make_pbx: PbxFactory, make_agi: AgiFactory) -> None:
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login()
    await pbx.place_call(CallPlan(flow=Flow.BLIND_TRANSFER))
    await client.drain()
    raw = bytes(client.raw)
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.endswith(b"\r\n\r\n")


async def test_utf8_names_cut_across_tcp_reads_reassemble_to_the_same_bytes(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """With 7-byte writes, Persian characters arrive split between reads and still decode whole."""
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port, ami_chunk_size=7)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="agent")
    name = "محمد رضایی"
    await pbx.place_call(CallPlan(caller_name=name, flow=Flow.ABANDON_IN_QUEUE))
    messages = await client.drain()

    def broken(chunk: bytes) -> bool:
        try:
            chunk.decode()
        except UnicodeDecodeError:
            return True
        return False

    names_seen = {value(m, "CallerIDName") for m in events(messages) if value(m, "CallerIDName")}
    assert any(broken(chunk) for chunk in client.reads)
    assert {name} == names_seen
    assert f"CallerIDName: {name}\r\n".encode() in bytes(client.raw)


async def test_frozen_ami_keeps_the_socket_but_answers_nothing_until_thawed(
    make_pbx: PbxFactory,
) -> None:
    """A half-open connection: the Ping sits unanswered, then is answered after thaw."""
    pbx = await make_pbx()
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    await client.message()
    pbx.freeze_ami()
    await client.send(("Action", "Ping"), ("ActionID", "p"))
    try:
        await client.message(timeout=0.3)
        answered_while_frozen = True
    except TimeoutError:
        answered_while_frozen = False
    pbx.thaw_ami()
    reply = await client.message(timeout=2.0)
    assert (False, "Pong") == (answered_while_frozen, value(reply, "Ping"))
    client.close()


async def test_dropped_connections_close_without_shutdown_and_logins_resume(
    make_pbx: PbxFactory,
) -> None:
    pbx = await make_pbx()
    client = await AmiClient.connect(pbx.ami_port)
    await client.login()
    await client.message()
    await client.message()
    await pbx.drop_ami_connections()
    leftover = await client.rest(timeout=2.0)
    await asyncio.sleep(0.05)
    count = pbx.connected_sessions
    again = await AmiClient.connect(pbx.ami_port)
    await again.login()
    await pbx.wait_for_logins(2, timeout=2.0)
    assert ([], 0) == (leftover, count)
    again.close()


async def test_restart_sends_shutdown_and_comes_back_with_uptime_one(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """Facts 46-49: calls hung up, `Shutdown`, connection closed; then Uptime 1 and ids from 0."""
    _, port = await make_agi()
    pbx = await make_pbx(agi_port=port, restart_downtime=0.05, time_scale=0.01)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login()
    call = pbx.start_call(CallPlan(talk_seconds=600))
    await client.until(lambda m: value(m, "Event") == "AgentConnect")
    await pbx.restart()
    result = await call
    tail = await client.rest()
    shutdown = [m for m in tail if value(m, "Event") == "Shutdown"]
    hangups = [value(m, "Cause") for m in tail if value(m, "Event") == "Hangup"]
    again = await AmiClient.connect(pbx.ami_port)
    await again.login()
    booted = await again.message()
    second = await pbx.place_call(CallPlan(flow=Flow.ABANDON_IN_QUEUE))
    expected = (
        [
            [
                ("Event", "Shutdown"),
                ("Privilege", "system,all"),
                ("Shutdown", "Cleanly"),
                ("Restart", "True"),
            ]
        ],
        ["0", "0", "0", "0"],
        None,
        "1",
    )
    assert expected == (shutdown, hangups, result.agi_status, value(booted, "Uptime"))
    assert second.linkedid.endswith(".0")
    assert re.fullmatch(r"Local/wait@callers-00000000;2", second.caller_channel)
    again.close()
