"""The simulated channel's FastAGI sessions, line for line against the lab captures."""

from __future__ import annotations

import asyncio
import re

import pytest

from ivr.sim import CallPlan, Flow, Press, Turn
from ivr.sim.agi import record_beeps, record_silence
from ivr.sim.transcript import ami_events, read_agi
from tests.sim.helpers import (
    AgiConnection,
    AgiFactory,
    AmiClient,
    Message,
    PbxFactory,
    captured_commands,
    captured_replies,
    events,
    value,
)

BEEP = 3404 / 8000


async def logged_in(port: int) -> AmiClient:
    client = await AmiClient.connect(port)
    await client.login()
    await client.message()
    await client.message()
    return client


def between(messages: list[Message], start: str, end: str) -> list[str]:
    """Event names after the AGIExecStart of `start` up to the AGIExecEnd of `end`."""
    collected: list[str] = []
    inside = False
    for message in messages:
        name, command = message[0][1], value(message, "Command")
        if name == "AGIExecStart" and command == start:
            inside = True
            continue
        if name == "AGIExecEnd" and command == end and inside:
            return collected
        if inside and name not in ("AGIExecStart", "AGIExecEnd"):
            collected.append(name)
    return collected


def captured_between(capture: str, start: str, end: str) -> list[str]:
    """Like `between` on a capture, without its survey's CEL stream/DTMF events (not simulated)."""
    messages = [
        list(m.headers)
        for m in ami_events(capture)
        if not (m.event == "CEL" and m.get("Application") == "AGI")
    ]
    return between(messages, start, end)


async def test_env_block_is_the_captured_one_with_this_calls_values(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """Fact 20's keys in order, LF only; calleridname as raw UTF-8; arg 1 the Linkedid."""
    server, port = await make_agi()
    pbx = await make_pbx(agi_port=port)
    result = await pbx.place_call(CallPlan(caller_name="Ñandú محمد Жанна", language="fa"))
    connection = server.connections[0]
    env = dict(connection.env)
    captured = read_agi("fastagi-session-complete.txt").environment
    static = {"agi_threadid", "agi_arg_1", "agi_channel", "agi_uniqueid", "agi_request"}
    expected_static = {k: v for k, v in captured if k not in static}
    expected_static |= {"agi_calleridname": "Ñandú محمد Жанна", "agi_language": "fa"}
    assert [k for k, _ in captured] == [k for k, _ in connection.env]
    assert expected_static == {k: v for k, v in env.items() if k not in static}
    assert (
        f"agi://127.0.0.1:{port}/nps",
        result.caller_channel,
        result.caller_uniqueid,
        result.linkedid,
    ) == (env["agi_request"], env["agi_channel"], env["agi_uniqueid"], env["agi_arg_1"])
    assert b"agi_calleridname: \xc3\x91and\xc3\xba \xd9\x85\xd8\xad" in b"".join(
        connection.env_lines
    )
    assert all(line.endswith(b"\n") and not line.endswith(b"\r\n") for line in connection.env_lines)


async def test_complete_survey_replies_like_the_capture(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """The commands of fastagi-session-complete.txt (timeouts shortened) get the captured replies.

    Keys: `9` for the first GET DATA, `1 0` for the second and `5` landing in the
    WAIT FOR DIGIT after it, silence, `7 #`, then `3` cutting demo-thanks at
    6880 samples and `#` ending the first RECORD FILE.
    """
    commands = captured_commands("fastagi-session-complete.txt")
    shortened = {
        "GET DATA digits/1 5000 2": "GET DATA digits/1 300 2",
        "GET DATA digits/2 5000 2": "GET DATA digits/2 300 2",
        "WAIT FOR DIGIT 5000": "WAIT FOR DIGIT 1000",
        "WAIT FOR DIGIT 1500": "WAIT FOR DIGIT 100",
        "GET DATA beep 1500 2": "GET DATA beep 100 2",
        "GET DATA beep 5000 3": "GET DATA beep 1000 3",
    }
    replies: list[list[str]] = []

    async def script(connection: AgiConnection) -> None:
        channel = dict(connection.env)["agi_channel"]
        for command in commands:
            text = shortened.get(command, command)
            text = text.replace("Local/s@callers-00000004;2", channel)
            text = re.sub(r'(RECORD FILE \S+ wav "#") 2000$', r"\1 200", text)
            replies.append(await connection.command(text))

    server, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port, prompt_durations={"beep": BEEP, "demo-thanks": 1.0})
    client = await logged_in(pbx.ami_port)
    survey = (
        Turn.keys("9", at=0.1),
        Turn((Press("10", at=0.08, gap=0.1), Press("5", at=0.4))),
        Turn.silence(),
        Turn.keys("7#", at=0.1, gap=0.1),
        Turn((Press("3", at=0.86), Press("#", at=0.86 + BEEP + 0.45))),
    )
    result = await pbx.place_call(CallPlan(survey=survey))
    messages = events(await client.drain())
    expected = [
        line.replace("1795329453.8", result.linkedid).replace(
            "1795329453.9", result.caller_uniqueid
        )
        for line in captured_replies("fastagi-session-complete.txt")
    ]
    actual = [line for group in replies for line in group]
    endpos = re.compile(r"(\(dtmf\)|\(timeout\)) endpos=\d+")
    assert [endpos.sub(r"\1 endpos=N", e) for e in expected] == [
        endpos.sub(r"\1 endpos=N", a) for a in actual
    ]
    digits = [value(m, "Digit") for m in messages if m[0][1] == "DTMFEnd"]
    ends = [value(m, "ResultCode") for m in messages if m[0][1] == "AGIExecEnd"]
    assert (list("91057#3#"), ["200"] * len(commands)) == (digits, ends)
    assert "SUCCESS" == result.agi_status
    assert result.agi_closed_by_service
    assert 1 == len(server.connections)


async def test_hangup_during_a_command_matches_the_capture(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """fastagi-session-hangup.txt: `200 result=-1`, one `HANGUP` before the next reply, 511 for
    media; the ;2 half's Hangup reaches AMI only once the service closes the socket (fact 23)."""
    closed = asyncio.Event()
    received: list[str] = []

    async def script(connection: AgiConnection) -> None:
        for command in captured_commands("fastagi-session-hangup.txt"):
            received.extend(await connection.command(command))
        await asyncio.sleep(0.2)
        closed.set()

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port)
    client = await logged_in(pbx.ami_port)
    call = pbx.start_call(CallPlan(survey=(Turn.hangup(at=0.1),)))
    caller_hangup = await client.until(
        lambda m: (
            value(m, "Event") == "Hangup" and value(m, "Channel").endswith("callers-00000000;2")
        )
    )
    hung_up_after_close = closed.is_set()
    result = await call
    await client.drain()
    messages = events(client.log)
    assert captured_replies("fastagi-session-hangup.txt") == received
    assert (True, "16", "HANGUP") == (
        hung_up_after_close,
        value(caller_hangup, "Cause"),
        result.agi_status,
    )
    moment = captured_between(
        "ami-caller-abandons-survey.txt", "GET DATA digits/1 5000 2", "GET DATA digits/1 5000 2"
    )
    assert moment == between(messages, "GET DATA digits/1 5000 2", "GET DATA digits/1 5000 2")


async def test_hangup_while_idle_sends_hangup_at_once(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """fastagi-session-hangup-idle.txt: `HANGUP` arrives unsolicited, then 511 for media."""
    received: list[str] = []
    idle: list[str] = []

    async def script(connection: AgiConnection) -> None:
        received.extend(await connection.command("ANSWER"))
        received.extend(await connection.command('STREAM FILE q1 "0123456789"'))
        idle.append(await connection.line(timeout=2.0))
        received.extend(idle)
        for command in captured_commands("fastagi-session-hangup-idle.txt")[1:]:
            received.extend(await connection.command(command))

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port)
    client = await logged_in(pbx.ami_port)
    await pbx.place_call(CallPlan(survey=(Turn.hangup(at=0.2),)))
    messages = events(await client.drain())
    expected = captured_replies("fastagi-session-hangup-idle.txt")
    expected.insert(1, "200 result=0 endpos=400")
    assert (["HANGUP"], expected) == (idle, received)
    captured_idle = captured_between(
        "ami-caller-abandons-survey-idle.txt", "ANSWER", "GET VARIABLE MEMBERNAME"
    )
    between_commands = between(messages, 'STREAM FILE q1 "0123456789"', "GET VARIABLE MEMBERNAME")
    assert captured_idle == between_commands


async def test_hangup_command_matches_the_option_c_capture(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """HANGUP answers `200 result=1`, `HANGUP` precedes the next reply, SoftHangupRequest 32."""
    received: list[str] = []

    async def script(connection: AgiConnection) -> None:
        for command in captured_commands("fastagi-session-option-c-and-hangup-command.txt"):
            received.extend(await connection.command(command))

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port)
    client = await logged_in(pbx.ami_port)
    plan = CallPlan(queue="sales", set_vars=False, survey=(Turn.keys("8#", at=0.1, gap=0.1),))
    result = await pbx.place_call(plan)
    messages = events(await client.drain())
    expected = [
        line.replace("1795329512.20", result.linkedid)
        for line in captured_replies("fastagi-session-option-c-and-hangup-command.txt")
    ]
    status = [value(m, "Value") for m in messages if value(m, "Variable") == "AGISTATUS"]
    soft = [value(m, "Cause") for m in messages if m[0][1] == "SoftHangupRequest"]
    assert expected == received
    assert (["HANGUP"], "32") == (status, soft[soft.index("32")])
    assert ["SoftHangupRequest"] == between(messages, "HANGUP", "HANGUP")


async def test_unknown_command_and_wrong_usage(make_pbx: PbxFactory, make_agi: AgiFactory) -> None:
    """`510 Invalid or unknown command`; the multi-line 520 usage block (wording: guess)."""
    received: list[list[str]] = []

    async def script(connection: AgiConnection) -> None:
        received.append(await connection.command("SING A SONG"))
        received.append(await connection.command("WAIT FOR DIGIT"))
        received.append(await connection.command("NOOP"))

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port)
    client = await logged_in(pbx.ami_port)
    await pbx.place_call(CallPlan())
    ends = [
        (value(m, "ResultCode"), value(m, "Result"))
        for m in events(await client.drain())
        if m[0][1] == "AGIExecEnd"
    ]
    usage = received[1]
    assert (["510 Invalid or unknown command"], ["200 result=0"]) == (received[0], received[2])
    assert (
        "520-Invalid command syntax.  Proper usage follows:",
        "520 End of proper usage.",
        3,
    ) == (usage[0], usage[-1], len(usage))
    assert [("510", "Invalid or unknown command"), ("520", "Usage"), ("200", "Success")] == ends


async def test_keys_reach_only_the_command_that_wants_them(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """A non-escape key is dropped by STREAM FILE, a key between commands by everyone (fact 54);
    both still show on AMI as DTMFBegin/DTMFEnd, since the channel did receive them."""
    received: list[list[str]] = []

    async def script(connection: AgiConnection) -> None:
        received.append(await connection.command('STREAM FILE q1 "12"'))
        received.append(await connection.command('STREAM FILE q2 "0123456789"'))
        await asyncio.sleep(0.2)
        received.append(await connection.command("WAIT FOR DIGIT 100"))

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port, prompt_seconds=0.3)
    client = await logged_in(pbx.ami_port)
    survey = (Turn.keys("51", at=0.05, gap=0.1), Turn.keys("4", at=0.35))
    await pbx.place_call(CallPlan(survey=survey))
    digits = [value(m, "Digit") for m in events(await client.drain()) if m[0][1] == "DTMFEnd"]
    expected = [
        ["200 result=49 endpos=1200"],
        ["200 result=0 endpos=2400"],
        ["200 result=0"],
    ]
    assert (expected, ["5", "1", "4"]) == (received, digits)


async def test_missing_prompt_looks_like_a_hangup_without_the_hangup_line(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """Fact 52: `200 result=-1 endpos=0` / `200 result=-1` at once, and the session goes on."""
    received: list[list[str]] = []

    async def script(connection: AgiConnection) -> None:
        received.append(await connection.command('STREAM FILE intro "0123456789"'))
        received.append(await connection.command("GET DATA intro 1000 2"))
        received.append(await connection.command('STREAM FILE q1 "0123456789"'))

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port, missing_prompts=frozenset({"intro"}))
    client = await logged_in(pbx.ami_port)
    await pbx.place_call(CallPlan(survey=(Turn.keys("8", at=0.02),)))
    ends = [
        (value(m, "ResultCode"), value(m, "Result"))
        for m in events(await client.drain())
        if m[0][1] == "AGIExecEnd"
    ]
    expected = [["200 result=-1 endpos=0"], ["200 result=-1"], ["200 result=56 endpos=160"]]
    assert expected == received
    assert [("-1", "Failure"), ("200", "Success"), ("200", "Success")] == ends


async def test_agi_server_down_sets_failure_and_the_dialplan_goes_on(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """Fact 16: connection refused, `VarSet AGISTATUS=FAILURE`, the next priorities run."""
    server, port = await make_agi()
    await server.stop()
    pbx = await make_pbx(agi_port=port)
    client = await logged_in(pbx.ami_port)
    result = await pbx.place_call(CallPlan())
    messages = events(await client.drain())
    status = next(value(m, "Value") for m in messages if value(m, "Variable") == "AGISTATUS")
    noop = [value(m, "AppData") for m in messages if value(m, "AppData").startswith("AGISTATUS=")]
    captured = [
        e.get("AppData")
        for e in ami_events("ami-agi-server-down.txt")
        if e.get("AppData").startswith("AGISTATUS=")
    ]
    assert ("FAILURE", (), False) == (
        result.agi_status,
        result.agi_lines,
        result.agi_closed_by_service,
    )
    assert ("FAILURE", captured) == (status, noop)


async def test_a_session_the_service_never_closes_is_given_up(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    async def script(connection: AgiConnection) -> None:
        await asyncio.sleep(30)

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port, agi_session_limit=0.3)
    result = await asyncio.wait_for(pbx.place_call(CallPlan()), 5.0)
    assert ("SUCCESS", False) == (result.agi_status, result.agi_closed_by_service)


async def test_agent_leg_enters_the_survey_with_queue_option_f(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """fastagi-session-agent-leg-via-F-option.txt: the request comes from the member's ;1 leg."""
    server, port = await make_agi()
    pbx = await make_pbx(agi_port=port)
    plan = CallPlan(flow=Flow.CALLER_HANGS_UP_BRIDGED, agent_leg_survey=True)
    result = await pbx.place_call(plan)
    env = dict(server.connections[0].env)
    captured = dict(read_agi("fastagi-session-agent-leg-via-F-option.txt").environment)
    keys = ("agi_type", "agi_callerid", "agi_context", "agi_extension", "agi_priority")
    assert [captured[k] for k in keys] == [env[k] for k in keys]
    assert re.fullmatch(r"Local/agent1@agents-[0-9a-f]{8};1", env["agi_channel"])
    assert result.caller_channel != env["agi_channel"]


async def test_restart_during_get_data_matches_the_capture(
    make_pbx: PbxFactory, make_agi: AgiFactory
) -> None:
    """fastagi-session-during-restart-agi-closes.txt: `200 result=-1`, `HANGUP` on its own,
    the service closes, `Shutdown: Cleanly`."""
    received: list[str] = []
    running = asyncio.Event()

    async def script(connection: AgiConnection) -> None:
        for command in captured_commands("fastagi-session-during-restart-agi-closes.txt"):
            if command.startswith("GET DATA"):
                running.set()
            received.extend(await connection.command(command))
        received.append(await connection.line(timeout=2.0))

    _, port = await make_agi(script)
    pbx = await make_pbx(agi_port=port, restart_downtime=0.05)
    client = await logged_in(pbx.ami_port)
    call = pbx.start_call(CallPlan())
    await running.wait()
    await asyncio.sleep(0.05)
    await pbx.restart()
    result = await call
    await client.rest()
    messages = events(client.log)
    shutdown = next(value(m, "Shutdown") for m in messages if m[0][1] == "Shutdown")
    command = "GET DATA digits/1 20000 2"
    moment = captured_between("ami-asterisk-restart-agi-closes.txt", command, command)
    assert captured_replies("fastagi-session-during-restart-agi-closes.txt") == received
    assert ("Cleanly", "HANGUP", True) == (
        shutdown,
        result.agi_status,
        result.agi_closed_by_service,
    )
    assert moment == between(messages, command, command)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["f", "wav", '"#"', "1000", "0", "BEEP", "s=3"], (True, 3)),
        (["f", "wav", '"#"', "1000", "BEEP", "s=5"], (True, 5)),
        (["f", "wav", '"#"', "1000", "0"], (False, 0)),
        (["f", "wav", '"#"', "1000", "s=2"], (False, 2)),
        (["f", "wav", '"#"', "1000"], (False, 0)),
    ],
)
def test_record_file_arguments_follow_res_agi(args: list[str], expected: tuple[bool, int]) -> None:
    """Beep: a non-offset 5th argument or any 6th without `=`; silence: `s=N` in 5th-7th."""
    assert expected == (record_beeps(args), record_silence(args))
