"""The whole service against the simulated PBX, as the end-to-end tests run it.

The simulated PBX's account, timing and ports, the service's configuration for
it, and `Stack`, which reads back what the service stored. The service itself
builds no reader (it only writes, through its writer), so reads here go through
an engine of the test's own on the same database URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ivr.config.settings import AgiConfig, Config, DatabaseConfig, SurveyConfig, WebConfig
from ivr.config.values import AmiConfig
from ivr.core.domain import CallRecord
from ivr.runtime.service import Service
from ivr.sim import Agent, AmiAccount, CallPlan, SimulatedPbx, Turn
from storage.database import create_engine, session_factory
from storage.repository import SqlSurveyRepository, StoredSurvey

PBX = "pbx-test"
SECRET = "s3cret"
WEB_TOKEN = "e2e-token-0123456789abcdef"
AGENT_ONE = Agent("Agent One", "Local/agent1@agents/n")
AGENT_TWO = Agent("Agent Two", "Local/agent2@agents/n")
ANSWER_TIMEOUT = 0.6
TEN_TIMEOUT = 0.45
PROMPT = 0.05


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def started_pbx(**options: Any) -> tuple[SimulatedPbx, int]:
    """A running simulated PBX of these tests, and the FastAGI port it calls."""
    agi_port = free_port()
    pbx = SimulatedPbx(
        name=PBX,
        agi_port=agi_port,
        accounts=(AmiAccount("ivr", SECRET),),
        time_scale=0.002,
        prompt_seconds=PROMPT,
        **options,
    )
    await pbx.start()
    return pbx, agi_port


def service_config(ami_port: int, database_url: str, agi_port: int = 0) -> Config:
    return Config(
        ami=AmiConfig(
            host="127.0.0.1",
            port=ami_port,
            username="ivr",
            secret=SECRET,
            name=PBX,
            ping_interval=0.5,
            ping_timeout=0.5,
            reconnect_min=0.1,
            reconnect_max=1.0,
            auth_retry_min=0.3,
        ),
        agi=AgiConfig(host="127.0.0.1", port=agi_port, header_timeout=2.0, command_timeout=5.0),
        database=DatabaseConfig(url=database_url),
        survey=SurveyConfig(answer_timeout=ANSWER_TIMEOUT, ten_timeout=TEN_TIMEOUT, max_attempts=3),
        web=WebConfig(port=0, tokens=f"admin:{WEB_TOKEN}"),
    )


@contextlib.asynccontextmanager
async def survey_reader(database_url: str) -> AsyncIterator[SqlSurveyRepository]:
    """Reads on an engine disposed on leaving, so a test need not tear one down."""
    engine = create_engine(database_url)
    try:
        yield SqlSurveyRepository(session_factory(engine))
    finally:
        await engine.dispose()


@dataclass
class Stack:
    pbx: SimulatedPbx
    service: Service

    def reader(self) -> contextlib.AbstractAsyncContextManager[SqlSurveyRepository]:
        """Reads of what the service stored, on its database."""
        return survey_reader(self.service.config.database.url)

    async def call(self, plan: CallPlan) -> tuple[CallRecord, StoredSurvey | None]:
        result = await self.pbx.place_call(plan)
        call = await self.stored_call(result.linkedid)
        return call, await self.survey(result.linkedid)

    async def survey(self, linkedid: str, pbx: str = PBX) -> StoredSurvey | None:
        """The survey as stored now (None when there is none)."""
        async with self.reader() as reader:
            return await reader.get_survey(pbx, linkedid)

    async def call_row(self, linkedid: str, pbx: str = PBX) -> CallRecord | None:
        """The call as stored now, ended or not (None when there is none)."""
        async with self.reader() as reader:
            return await reader.get_call(pbx, linkedid)

    async def start_service(self) -> None:
        await self.service.start()
        assert self.service.ami is not None
        assert await self.service.ami.wait_logged_in(5.0)

    async def agent_talking(self, timeout: float = 5.0) -> str:
        """Until AMI tracking has seen an agent connect on a call in progress; its Linkedid."""
        async with asyncio.timeout(timeout):
            while True:
                for linkedid in self.pbx.linkedids():
                    call = self.service.tracker.get(linkedid)
                    if call is not None and call.agents:
                        return linkedid
                await asyncio.sleep(0.01)

    async def finished_survey(
        self, linkedid: str, pbx: str = PBX, timeout: float = 5.0
    ) -> StoredSurvey:
        """The survey once its final writes (done in the background) have landed."""
        async with self.reader() as reader, asyncio.timeout(timeout):
            while True:
                survey = await reader.get_survey(pbx, linkedid)
                if survey is not None and survey.finished_at is not None:
                    return survey
                await asyncio.sleep(0.05)

    async def stored_call(self, linkedid: str, timeout: float = 5.0) -> CallRecord:
        """The call as stored once the service has seen it end."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self.reader() as reader:
            while True:
                call = await reader.get_call(PBX, linkedid)
                if call is not None and call.ended_at is not None:
                    return call
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"call {linkedid} not stored as ended: {call}")
                await asyncio.sleep(0.05)


StackFactory = Callable[..., Awaitable[Stack]]


def scores(survey: StoredSurvey | None) -> list[tuple[str, int | None, int]]:
    assert survey is not None
    return [(answer.question, answer.value, answer.attempts) for answer in survey.answers]


def after_prompt(keys: str) -> Turn:
    """Keys typed once the question has played out (during WAIT FOR DIGIT).

    Asterisk drops a key pressed while no command runs (fact 54); 200 ms after the
    prompt ended leaves the service ample time to have sent WAIT FOR DIGIT, even
    on a loaded machine.
    """
    return Turn.keys(keys, at=PROMPT + 0.2, gap=0.15)
