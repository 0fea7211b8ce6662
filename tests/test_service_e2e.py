"""The whole service over TCP against the simulated PBX, on SQLite and PostgreSQL.

Each test places a call on the simulator (AMI events replayed from the
Asterisk 22 captures, FastAGI sessions with real replies and key timing),
then reads back what the service stored. Nothing of the service is mocked.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.core.domain import HangupSide, SurveyStatus
from ivr.runtime.service import Service
from ivr.sim import AmiAccount, CallPlan, Flow, SimulatedPbx, Turn, lab_listener
from storage.database import upgrade
from tests.helpers.agi_peer import AgiPeer
from tests.helpers.stack import (
    AGENT_ONE,
    AGENT_TWO,
    PBX,
    PROMPT,
    SECRET,
    Stack,
    StackFactory,
    after_prompt,
    free_port,
    scores,
    service_config,
)


@pytest.fixture
async def make_stack(database_url: str) -> AsyncIterator[StackFactory]:
    await upgrade(database_url)
    started: list[Stack] = []

    async def make(**pbx_options: object) -> Stack:
        agi_port = free_port()
        options: dict[str, object] = {
            "name": PBX,
            "agi_port": agi_port,
            "accounts": (AmiAccount("ivr", SECRET),),
            "time_scale": 0.002,
            "prompt_seconds": PROMPT,
            "login_failure_delay": 0.05,
        }
        options.update(pbx_options)
        start_service = bool(options.pop("start_service", True))
        pbx = SimulatedPbx(**options)  # type: ignore[arg-type]
        await pbx.start()
        service = Service(service_config(pbx.ami_port, database_url, agi_port))
        stack = Stack(pbx, service)
        started.append(stack)
        if start_service:
            await stack.start_service()
        return stack

    yield make
    for stack in started:
        if stack.service.agi is not None:
            await stack.service.stop(grace=1.0)
        await stack.pbx.stop()


@pytest.mark.parametrize(
    ("turns", "expected_scores", "expected_status"),
    [
        (
            (after_prompt("9"), after_prompt("8")),
            [("agent", 9, 1), ("company", 8, 1)],
            SurveyStatus.COMPLETED,
        ),
        (
            (after_prompt("10"), after_prompt("0")),
            [("agent", 10, 1), ("company", 0, 1)],
            SurveyStatus.COMPLETED,
        ),
        (
            (after_prompt("1#"), after_prompt("1")),
            [("agent", 1, 1), ("company", 1, 1)],
            SurveyStatus.COMPLETED,
        ),
        (
            (Turn.keys("7", at=0.01), Turn.keys("10", at=0.01, gap=0.15)),
            [("agent", 7, 1), ("company", 10, 1)],
            SurveyStatus.COMPLETED,
        ),
        (
            (after_prompt("#"), after_prompt("6"), after_prompt("15"), after_prompt("5")),
            [("agent", 6, 2), ("company", 5, 2)],
            SurveyStatus.COMPLETED,
        ),
        (
            (Turn.silence(), Turn.silence(), Turn.silence(), after_prompt("4")),
            [("agent", None, 3), ("company", 4, 1)],
            SurveyStatus.COMPLETED,
        ),
        (
            (after_prompt("9"), Turn.hangup(at=0.02)),
            [("agent", 9, 1)],
            SurveyStatus.PARTIAL,
        ),
        ((Turn.hangup(at=0.02),), [], SurveyStatus.HUNG_UP),
        ((), [("agent", None, 3), ("company", None, 3)], SurveyStatus.NO_ANSWER),
    ],
    ids=[
        "complete",
        "10 as 1-0",
        "1 then # and 1 then nothing",
        "barge-in",
        "invalid then valid",
        "silence until give-up",
        "hang-up after the first question",
        "hang-up during the first question",
        "silence throughout",
    ],
)
async def test_keypad_answers_land_in_the_database(
    make_stack: StackFactory,
    turns: tuple[Turn, ...],
    expected_scores: list[tuple[str, int | None, int]],
    expected_status: SurveyStatus,
) -> None:
    """Each keypad behaviour, through real FastAGI, stores the right scores and status."""
    stack = await make_stack()
    _call, survey = await stack.call(CallPlan(survey=turns))
    assert expected_scores == scores(survey)
    assert survey is not None
    assert expected_status == survey.status


async def test_queue_call_is_stored_with_agent_times_and_who_hung_up(
    make_stack: StackFactory,
) -> None:
    """The call record carries caller, queue, agent, hold, talk and AgentComplete's Reason."""
    stack = await make_stack()
    plan = CallPlan(
        queue="support",
        agents=(AGENT_ONE,),
        caller_number="+15550001111",
        caller_name="Customer",
        hold_seconds=4,
        talk_seconds=95,
        survey=(after_prompt("9"), after_prompt("9")),
    )
    call, _ = await stack.call(plan)
    expected = (
        "+15550001111",
        "Customer",
        "support",
        ["Agent One"],
        "Local/agent1@agents/n",
        4,
        95,
        HangupSide.AGENT,
        False,
    )
    actual = (
        call.caller_number,
        call.caller_name,
        call.queue,
        [leg.name for leg in call.agents],
        call.agents[-1].interface,
        call.hold_seconds,
        call.talk_seconds,
        call.ended_by,
        call.partial,
    )
    assert expected == actual


async def test_caller_abandoning_in_queue_is_recorded_without_survey(
    make_stack: StackFactory,
) -> None:
    """QueueCallerAbandon: the call is stored as abandoned and nobody is surveyed."""
    stack = await make_stack()
    call, survey = await stack.call(CallPlan(flow=Flow.ABANDON_IN_QUEUE))
    assert (True, [], None) == (call.abandoned, list(call.agents), survey)


@pytest.mark.parametrize("agent_leg_survey", [False, True], ids=["no F()", "F() agent leg"])
async def test_caller_hanging_up_first_is_not_surveyed(
    make_stack: StackFactory, agent_leg_survey: bool
) -> None:
    """Reason caller: no survey, even when queue option F() sends the agent's leg to the AGI."""
    stack = await make_stack()
    plan = CallPlan(flow=Flow.CALLER_HANGS_UP_BRIDGED, agent_leg_survey=agent_leg_survey)
    call, survey = await stack.call(plan)
    assert (HangupSide.CALLER, None) == (call.ended_by, survey)


@pytest.mark.parametrize(
    "flow",
    [Flow.BLIND_TRANSFER, Flow.ATTENDED_TRANSFER],
    ids=["blind transfer", "attended transfer"],
)
async def test_transfer_credits_the_last_agent_and_keeps_the_chain(
    make_stack: StackFactory, flow: Flow
) -> None:
    """After a transfer the survey credits the second agent; both are stored in order."""
    stack = await make_stack()
    plan = CallPlan(
        flow=flow,
        agents=(AGENT_ONE, AGENT_TWO),
        set_vars=False,
        survey=(after_prompt("3"), after_prompt("8")),
    )
    call, survey = await stack.call(plan)
    expected = (["Agent One", "Agent Two"], "Agent Two", True, [("agent", 3, 1), ("company", 8, 1)])
    actual = (
        [leg.name for leg in call.agents],
        call.agents[-1].name,
        call.transferred,
        scores(survey),
    )
    assert expected == actual


async def test_caller_names_split_mid_character_across_reads_are_stored_whole(
    make_stack: StackFactory,
) -> None:
    """Persian and Russian names cut inside a UTF-8 character by TCP reads arrive intact.

    7-byte writes make the stream slow, so the account is the lab's least-privilege
    listener (22 events per call, fact 44), which also proves tracking works with it.
    """
    listener = lab_listener("ivr", SECRET)
    stack = await make_stack(ami_chunk_size=7, accounts=(listener,))
    for name in ("محمد رضایی", "Жанна Петрова"):
        call, _ = await stack.call(CallPlan(caller_name=name, survey=(after_prompt("9"),)))
        assert name == call.caller_name


async def test_ami_connection_dropped_mid_call_is_restored_and_the_call_still_credited(
    make_stack: StackFactory,
) -> None:
    """A cut AMI connection reconnects and resyncs; the survey still credits the agent."""
    stack = await make_stack()
    plan = CallPlan(talk_seconds=400, survey=(after_prompt("9"), after_prompt("7")))
    task = stack.pbx.start_call(plan)
    await asyncio.sleep(0.3)
    logins_before = stack.service.ami.logins if stack.service.ami else 0
    await stack.pbx.drop_ami_connections()
    result = await task
    call = await stack.stored_call(result.linkedid)
    survey = await stack.survey(result.linkedid)
    assert stack.service.ami is not None
    assert stack.service.ami.logins > logins_before
    assert ("Agent One", [("agent", 9, 1), ("company", 7, 1)]) == (
        call.agents[-1].name,
        scores(survey),
    )


async def test_call_that_ended_while_ami_was_down_is_stored_from_the_resync(
    make_stack: StackFactory,
) -> None:
    """AMI is cut mid-call and the call ends during the outage: no Hangup ever reaches
    the service. After the reconnect the resync no longer lists the call, so it is
    stored ended (partial, who ended it unknown) with its survey, not left open."""
    stack = await make_stack()
    plan = CallPlan(talk_seconds=300, survey=(after_prompt("9"), after_prompt("7")))
    task = stack.pbx.start_call(plan)
    await stack.agent_talking()
    await stack.pbx.cut_ami()
    result = await task
    await stack.pbx.restore_ami()
    call = await stack.stored_call(result.linkedid)
    survey = await stack.survey(result.linkedid)
    expected = (True, ["Agent One"], HangupSide.UNKNOWN, [("agent", 9, 1), ("company", 7, 1)])
    assert expected == (
        call.partial,
        [leg.name for leg in call.agents],
        call.ended_by,
        scores(survey),
    )


async def test_asterisk_restart_mid_call_stores_the_call_and_logs_in_again(
    make_stack: StackFactory,
) -> None:
    """`core restart now` while the agent talks: the call is stored ended with its agent
    (not left open), and the service logs in to the restarted Asterisk by itself."""
    stack = await make_stack()
    task = stack.pbx.start_call(CallPlan(talk_seconds=400, survey=(after_prompt("9"),)))
    linkedid = await stack.agent_talking()
    await stack.pbx.restart()
    await task
    call = await stack.stored_call(linkedid)
    await stack.pbx.wait_for_logins(2)
    assert stack.service.ami is not None

    assert (["Agent One"], True) == (
        [leg.name for leg in call.agents],
        await stack.service.ami.wait_logged_in(5.0),
    )


@pytest.mark.parametrize("least_privilege", [False, True], ids=["CoreShowChannels", "BridgeInfo"])
async def test_service_started_mid_call_learns_the_call_from_the_resync(
    make_stack: StackFactory, least_privilege: bool
) -> None:
    """AMI never replays missed events: the resync finds the caller's agent, the survey
    credits it, and the stored record is marked partial with a single agent leg."""
    accounts = (AmiAccount("ivr", SECRET),)
    if least_privilege:
        accounts = (lab_listener("ivr", SECRET),)
    stack = await make_stack(start_service=False, accounts=accounts)
    plan = CallPlan(set_vars=False, talk_seconds=500, survey=(after_prompt("8"), after_prompt("6")))
    task = stack.pbx.start_call(plan)
    await asyncio.sleep(0.3)
    await stack.start_service()
    result = await task
    call = await stack.stored_call(result.linkedid)
    survey = await stack.survey(result.linkedid)
    assert stack.service.ami is not None
    refused_waits = [seconds for seconds in stack.service.ami.resync_seconds if seconds > 1.0]
    assert [] == refused_waits, "a refused resync action must not wait for a timeout"
    expected = (["Agent One"], True, [("agent", 8, 1), ("company", 6, 1)])
    assert expected == ([leg.name for leg in call.agents], call.partial, scores(survey))


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("${CHANNEL(linkedid)}",), (None, None)),
        (("${CHANNEL(linkedid)}", "optin=1", "initiated="), (True, None)),
        (("${CHANNEL(linkedid)}", "optin=", "initiated=agent"), (None, "agent")),
    ],
    ids=["automatic", "opted in before the queue", "sent by the agent"],
)
async def test_how_the_survey_was_reached_is_stored_with_it(
    make_stack: StackFactory,
    arguments: tuple[str, ...],
    expected: tuple[bool | None, str | None],
) -> None:
    """The dialplan recipes' optin=/initiated= arguments land on the survey row."""
    stack = await make_stack()
    plan = CallPlan(agi_args=arguments, survey=(after_prompt("9"), after_prompt("9")))
    _, survey = await stack.call(plan)
    assert survey is not None
    assert expected == (survey.opted_in, survey.initiated_by)


async def test_a_key_pressed_during_the_intro_answers_the_first_question(
    make_stack: StackFactory,
) -> None:
    """The intro is played with the answer keys as escape digits: 8 during it is the
    agent score, and the company question comes next (the agent question is skipped)."""
    stack = await make_stack()
    plan = CallPlan(intro=Turn.keys("8", at=PROMPT / 5), survey=(after_prompt("9"),))
    _, survey = await stack.call(plan)
    assert [("agent", 8, 1), ("company", 9, 1)] == scores(survey)


async def test_replayed_agi_request_ends_before_answer_and_never_counts_twice(
    make_stack: StackFactory,
) -> None:
    """A second AGI request for a call already surveyed is closed before ANSWER.

    No intro, no prompt: the socket closes at once, which Asterisk reports as
    AGISTATUS=SUCCESS, so the dialplan goes on (docs/asterisk-facts.md).
    """
    stack = await make_stack()
    result = await stack.pbx.place_call(CallPlan(survey=(after_prompt("9"), after_prompt("9"))))
    await stack.stored_call(result.linkedid)
    peer = await AgiPeer.connect(
        stack.service.agi_port, "fastagi-session-complete.txt", args=(result.linkedid,)
    )
    commands = []
    while (command := await peer.command()) != "":
        commands.append(command)
        await peer.send("200 result=0 endpos=800" if "STREAM" in command else "200 result=0")
    peer.close()
    assert [] == commands
    survey = await stack.survey(result.linkedid)
    assert [("agent", 9, 1), ("company", 9, 1)] == scores(survey)


async def test_a_request_for_a_call_being_surveyed_ends_before_answer(
    make_stack: StackFactory,
) -> None:
    """While the first survey is still at its intro, a second request for the
    same call (an attended transfer's hook, then the caller's own line) gets no
    ANSWER and no prompt; the first survey goes on and is stored once."""
    stack = await make_stack()
    linkedid = "1795300000.7"
    first = await AgiPeer.connect(
        stack.service.agi_port, "fastagi-session-complete.txt", args=(linkedid,)
    )
    while (command := await first.command()).startswith("GET VARIABLE"):
        await first.send("200 result=0")  # unknown to AMI: read from the channel
    assert "ANSWER" == command
    second = await AgiPeer.connect(
        stack.service.agi_port, "fastagi-session-complete.txt", args=(linkedid,)
    )
    second_commands = []
    while (command := await second.command()) != "":
        second_commands.append(command)
        await second.send("200 result=0")
    second.close()
    await first.send("200 result=0")
    first_commands = []
    while (command := await first.command()) != "":
        first_commands.append(command)
        reply = "200 result=55 endpos=100" if "q-" in command or "question" in command else None
        await first.send(
            reply or ("200 result=0 endpos=8000" if "STREAM" in command else "200 result=0")
        )
        if "thanks" in command:
            break
    first.close()
    survey = await stack.finished_survey(linkedid)
    answered_or_played = [c for c in second_commands if not c.startswith("GET VARIABLE")]
    assert ([], True) == (answered_or_played, any("intro" in c for c in first_commands))
    assert [("agent", 7, 1), ("company", 7, 1)] == scores(survey)


async def test_call_unknown_to_ami_is_surveyed_from_channel_variables(
    make_stack: StackFactory,
) -> None:
    """After our own restart mid-call, QUEUENAME/MEMBERNAME give a partial record."""
    stack = await make_stack()
    linkedid = "1795399999.1"
    peer = await AgiPeer.connect(
        stack.service.agi_port, "fastagi-session-complete.txt", args=(linkedid,)
    )
    variables = {
        "GET VARIABLE QUEUENAME": "200 result=1 (support)",
        "GET VARIABLE MEMBERNAME": "200 result=1 (Agent One)",
        "GET VARIABLE MEMBERINTERFACE": "200 result=1 (Local/agent1@agents/n)",
    }
    while True:
        command = await peer.command()
        if command in variables:
            await peer.send(variables[command])
        elif command == "ANSWER":
            await peer.send("200 result=0")
        elif "q-" in command or "question" in command:
            await peer.send("200 result=56 endpos=100")  # "8" pressed during the question
        elif command.startswith("STREAM FILE"):
            await peer.send("200 result=0 endpos=8000")
        else:
            raise AssertionError(f"unexpected command {command!r}")
        if "thanks" in command:
            break
    assert await peer.closed_by_server()
    peer.close()
    survey = await stack.finished_survey(linkedid)
    assert stack.service.writer is not None
    await stack.service.background.drain(5.0)
    await stack.service.writer.flush()  # answers are queued, not awaited, by the route
    call = await stack.call_row(linkedid)
    assert call is not None
    expected = (True, "support", "Agent One", [("agent", 8, 1), ("company", 8, 1)])
    assert expected == (call.partial, call.queue, call.agents[-1].name, scores(survey))


async def test_missing_prompt_does_not_drop_the_caller(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing intro looks like a hang-up to AGI (fact 52); the survey goes on and says why."""
    stack = await make_stack(missing_prompts=frozenset({"ivr-survey/intro"}))
    with caplog.at_level(logging.ERROR):
        _, survey = await stack.call(CallPlan(survey=(after_prompt("9"), after_prompt("9"))))
    assert [("agent", 9, 1), ("company", 9, 1)] == scores(survey)
    assert any("ivr-survey/intro" in record.getMessage() for record in caplog.records)


async def test_wrong_secret_is_reported_and_backed_off(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused login is logged each attempt and retried ever more slowly, never
    hammered, up to [ami] reconnect_max (past it, two delays of the ceiling may
    come in either order: each carries up to 20% of jitter)."""
    await upgrade(database_url)
    async with SimulatedPbx(
        name=PBX, accounts=(AmiAccount("ivr", "other"),), login_failure_delay=0.0
    ) as pbx:
        config = service_config(pbx.ami_port, database_url)
        service = Service(config)
        with caplog.at_level(logging.ERROR):
            await service.start()
            await asyncio.sleep(2.5)
            await service.stop(grace=0.5)
    times = [at for _, accepted, at in pbx.login_attempts if not accepted]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert 2 <= len(times) <= 5
    at_ceiling = 0.8 * config.ami.reconnect_max
    assert all(
        later > earlier or min(earlier, later) >= at_ceiling
        for earlier, later in itertools.pairwise(gaps)
    ), gaps
    refusals = [r for r in caplog.records if "login refused" in r.getMessage()]
    assert len(times) == len(refusals)
    assert not any(SECRET in r.getMessage() or "other" in r.getMessage() for r in caplog.records)


async def test_half_open_ami_connection_is_noticed_by_the_keepalive(
    make_stack: StackFactory,
) -> None:
    """When Asterisk stops answering, the unanswered Ping drops and remakes the session."""
    stack = await make_stack()
    assert stack.service.ami is not None
    logins = stack.service.ami.logins
    stack.pbx.freeze_ami()
    await asyncio.sleep(3.0)  # ping every 0.5 s, unanswered after 0.5 s: noticed well within
    stack.pbx.thaw_ami()
    assert await stack.service.ami.wait_logged_in(3.0)
    assert stack.service.ami.logins > logins


async def test_service_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    """Start-up stops with the command to run, instead of failing later mid-call."""
    from storage.database import DatabaseNotMigrated  # noqa: PLC0415 - named where the test expects it

    config = service_config(5038, f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    with pytest.raises(DatabaseNotMigrated, match="ivr-survey db upgrade"):
        await Service(config).start()


async def test_a_caller_is_surveyed_while_reports_hold_every_reporting_connection(
    make_stack: StackFactory,
) -> None:
    """Dashboard and API queries share one pool (five connections, ten more under
    load). Holding all of it stands for a manager's slow report at shift change:
    the policy's history read and the survey's writes have connections of their
    own, so the caller goes through the survey meanwhile, no slower.

    The pool is taken through the service's reporting engine: no request from
    outside holds a connection long enough on a test-sized database.
    """
    stack = await make_stack()
    reporting = stack.service._engine
    assert reporting is not None
    held = [await reporting.connect() for _ in range(15)]
    try:
        result = await asyncio.wait_for(
            stack.pbx.place_call(CallPlan(survey=(after_prompt("9"), after_prompt("10")))), 10.0
        )
    finally:
        for connection in held:
            await connection.close()

    survey = await stack.finished_survey(result.linkedid)
    assert ("SUCCESS", [("agent", 9, 1), ("company", 10, 1)], SurveyStatus.COMPLETED) == (
        result.agi_status,
        scores(survey),
        survey.status,
    )


async def test_stopping_logs_off_without_reporting_a_lost_connection(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's own Logoff makes Asterisk close the session: that is the
    end, not an outage, so no "connection lost; reconnecting" warning and no
    new login follow it."""
    stack = await make_stack()
    logins = stack.pbx.login_attempts[:]

    with caplog.at_level(logging.INFO, logger="ivr.adapters.ami.client"):
        await stack.service.stop(grace=1.0)
        await asyncio.sleep(0.3)

    lost = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert ([], logins) == (lost, stack.pbx.login_attempts)
