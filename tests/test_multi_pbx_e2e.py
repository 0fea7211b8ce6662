"""One service, two simulated Asterisk servers at once, on SQLite and PostgreSQL.

Each simulated PBX has its own AMI port and connects to the one FastAGI port
from its own loopback address (127.0.0.2 and 127.0.0.3: Linux accepts any
127.x as a source), as two Asterisk hosts would. Their Uniqueid clocks are
the same, so both hand out the same Linkedids: the service must keep the two
calls apart and credit each survey to its own PBX's agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import pytest

from ivr.config.pbx import PbxConfig
from ivr.core.calls import CallTracker
from ivr.core.domain import CallRecord
from ivr.runtime.service import Service
from ivr.sim import Agent, AmiAccount, CallPlan, SimulatedPbx
from storage.database import upgrade
from storage.repository import StoredSurvey
from tests.helpers.stack import (
    PROMPT,
    SECRET,
    after_prompt,
    free_port,
    scores,
    service_config,
    survey_reader,
)

EAST_ADDRESS = "127.0.0.2"
WEST_ADDRESS = "127.0.0.3"
UNKNOWN_ADDRESS = "127.0.0.9"
EAST_AGENT = Agent("Eastern Agent", "Local/agent1@agents/n")
WEST_AGENT = Agent("Western Agent", "Local/agent1@agents/n")
SAME_CLOCK = 1795400000.0


def pbx_config(name: str, ami_port: int, address: str) -> PbxConfig:
    ami = dataclasses.replace(service_config(ami_port, "").ami, name=name)
    return PbxConfig(name, ami, (ipaddress.ip_network(address),))


@dataclass
class TwoPbxs:
    east: SimulatedPbx
    west: SimulatedPbx
    service: Service

    async def stored(self, pbx: str, linkedid: str) -> tuple[CallRecord, StoredSurvey]:
        """The call once stored ended, and its survey once finished."""
        async with (
            survey_reader(self.service.config.database.url) as repository,
            asyncio.timeout(5.0),
        ):
            while True:
                call = await repository.get_call(pbx, linkedid)
                survey = await repository.get_survey(pbx, linkedid)
                ended = call is not None and call.ended_at is not None
                if ended and survey is not None and survey.finished_at is not None:
                    assert call is not None
                    return call, survey
                await asyncio.sleep(0.05)


Factory = Callable[..., Awaitable[TwoPbxs]]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def agent_talking(tracker: CallTracker, pbx: SimulatedPbx) -> None:
    """Until the tracker has seen an agent connect on one of the PBX's calls in progress."""

    def talking() -> bool:
        calls = [tracker.get(linkedid) for linkedid in pbx.linkedids()]
        return any(call is not None and call.agents for call in calls)

    await until(talking)


@pytest.fixture
async def two_pbxs(database_url: str) -> AsyncIterator[Factory]:
    """Two simulated PBXs, `east` and `west`, followed by one service."""
    await upgrade(database_url)
    made: list[TwoPbxs] = []

    async def make(east_source: str = EAST_ADDRESS, west_source: str = WEST_ADDRESS) -> TwoPbxs:
        agi_port = free_port()
        sims = [
            SimulatedPbx(
                name=name,
                agi_port=agi_port,
                agi_source=source,
                accounts=(AmiAccount("ivr", SECRET),),
                time_scale=0.002,
                prompt_seconds=PROMPT,
                clock=lambda: SAME_CLOCK,
            )
            for name, source in (("east", east_source), ("west", west_source))
        ]
        for sim in sims:
            await sim.start()
        east, west = sims
        config = replace(
            service_config(east.ami_port, database_url, agi_port),
            pbxs=(
                pbx_config("east", east.ami_port, EAST_ADDRESS),
                pbx_config("west", west.ami_port, WEST_ADDRESS),
            ),
        )
        service = Service(config)
        pair = TwoPbxs(east, west, service)
        made.append(pair)
        await service.start()
        for link in service.links.values():
            assert link.ami is not None
            assert await link.ami.wait_logged_in(5.0)
        return pair

    yield make
    for pair in made:
        await pair.service.stop(grace=1.0)
        await pair.east.stop()
        await pair.west.stop()


async def test_the_same_linkedid_on_two_pbxs_at_once_is_two_calls_each_credited_to_its_agent(
    two_pbxs: Factory,
) -> None:
    """Both PBXs hand out the same Linkedid at the same moment; the source address of
    each FastAGI connection tells them apart, so each survey lands on its own call
    and credits its own PBX's agent."""
    pair = await two_pbxs()
    east_plan = CallPlan(agents=(EAST_AGENT,), survey=(after_prompt("9"), after_prompt("8")))
    west_plan = CallPlan(agents=(WEST_AGENT,), survey=(after_prompt("3"), after_prompt("4")))

    east_result, west_result = await asyncio.gather(
        pair.east.place_call(east_plan), pair.west.place_call(west_plan)
    )
    east_call, east_survey = await pair.stored("east", east_result.linkedid)
    west_call, west_survey = await pair.stored("west", west_result.linkedid)

    assert east_result.linkedid == west_result.linkedid
    expected = [
        ("east", "Eastern Agent", [("agent", 9, 1), ("company", 8, 1)]),
        ("west", "Western Agent", [("agent", 3, 1), ("company", 4, 1)]),
    ]
    assert expected == [
        (east_call.pbx, east_call.agents[-1].name, scores(east_survey)),
        (west_call.pbx, west_call.agents[-1].name, scores(west_survey)),
    ]


async def test_the_pbx_argument_attributes_a_request_whatever_its_address(
    two_pbxs: Factory,
) -> None:
    """`pbx=west` after the Linkedid wins over an address no PBX claims."""
    pair = await two_pbxs(west_source="127.0.0.1")
    plan = CallPlan(
        agents=(WEST_AGENT,),
        agi_args=("${CHANNEL(linkedid)}", "pbx=west"),
        survey=(after_prompt("7"), after_prompt("6")),
    )

    result = await pair.west.place_call(plan)
    call, survey = await pair.stored("west", result.linkedid)

    assert ("Western Agent", [("agent", 7, 1), ("company", 6, 1)]) == (
        call.agents[-1].name,
        scores(survey),
    )


async def test_a_request_from_an_unknown_address_is_refused_and_stored_nowhere(
    two_pbxs: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither pbx= nor a known source address: no survey, and a log line that names
    the Linkedid and the address, so the admin can fix agi_addresses or the dialplan."""
    pair = await two_pbxs(west_source=UNKNOWN_ADDRESS)
    plan = CallPlan(agents=(WEST_AGENT,), survey=(after_prompt("9"), after_prompt("9")))

    with caplog.at_level(logging.ERROR, logger="ivr.adapters.fastagi.attribution"):
        result = await pair.west.place_call(plan)
    async with survey_reader(pair.service.config.database.url) as repository:
        surveys = [await repository.get_survey(pbx, result.linkedid) for pbx in ("east", "west")]

    assert [None, None] == surveys
    assert [
        f"Linkedid={result.linkedid}: FastAGI {result.caller_channel} from {UNKNOWN_ADDRESS} "
        f"refused: source address {UNKNOWN_ADDRESS} is in no PBX's agi_addresses and no pbx= "
        "argument was given (set agi_addresses in [pbx.<name>] or pass pbx=<name> after the "
        "Linkedid); no survey"
    ] == [
        record.getMessage()
        for record in caplog.records
        if record.name == "ivr.adapters.fastagi.attribution"
    ]


async def test_each_pbx_resyncs_on_its_own_after_an_ami_cut(two_pbxs: Factory) -> None:
    """West's AMI is cut while its call ends; east is untouched. After the reconnect
    west's call is closed from the resync and east's call is stored as usual."""
    pair = await two_pbxs()
    west_plan = CallPlan(
        agents=(WEST_AGENT,), talk_seconds=300, survey=(after_prompt("5"), after_prompt("5"))
    )
    west_task = pair.west.start_call(west_plan)
    await agent_talking(pair.service.links["west"].tracker, pair.west)
    await pair.west.cut_ami()
    await until(lambda: not pair.service.links["west"].connected)
    connected_during_the_cut = dict(pair.service.ami_connected_by_pbx())
    east_result = await pair.east.place_call(
        CallPlan(agents=(EAST_AGENT,), survey=(after_prompt("9"), after_prompt("9")))
    )
    west_result = await west_task
    await pair.west.restore_ami()

    east_call, _ = await pair.stored("east", east_result.linkedid)
    west_call, west_survey = await pair.stored("west", west_result.linkedid)

    expected = (
        {"east": True, "west": False},
        False,
        True,
        "Western Agent",
        [("agent", 5, 1), ("company", 5, 1)],
    )
    assert expected == (
        connected_during_the_cut,
        east_call.partial,
        west_call.partial,
        west_call.agents[-1].name,
        scores(west_survey),
    )
