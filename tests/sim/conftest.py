"""Fixtures: simulated PBXs and scripted FastAGI servers, stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivr.sim import AmiAccount, SimulatedPbx, TemplateLibrary, lab_listener
from tests.sim.helpers import AgiFactory, AgiServer, PbxFactory, Script, close_at_once

LISTENER = lab_listener("ivrlistener", "ivrlistener")


@pytest.fixture(scope="session")
def library() -> TemplateLibrary:
    """Parsing the captures is the slow part of a PBX's first call; the tests share it."""
    return TemplateLibrary()


@pytest.fixture
async def make_pbx(library: TemplateLibrary) -> AsyncIterator[PbxFactory]:
    started: list[SimulatedPbx] = []

    async def make(**options: object) -> SimulatedPbx:
        settings: dict[str, object] = {
            "accounts": (AmiAccount("ivr", "secret"), LISTENER),
            "time_scale": 0.001,
            "prompt_seconds": 0.05,
            "login_failure_delay": 0.05,
            "templates": library,
            "seed": 7,
        }
        settings.update(options)
        pbx = SimulatedPbx(**settings)  # type: ignore[arg-type]
        await pbx.start()
        started.append(pbx)
        return pbx

    yield make
    for pbx in started:
        await pbx.stop()


@pytest.fixture
async def make_agi() -> AsyncIterator[AgiFactory]:
    servers: list[AgiServer] = []

    async def make(script: Script = close_at_once) -> tuple[AgiServer, int]:
        server = AgiServer(script)
        port = await server.start()
        servers.append(server)
        return server, port

    yield make
    for server in servers:
        await server.stop()
