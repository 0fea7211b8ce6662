"""A process that can reach the FastAGI port cannot store scores it makes up.

FastAGI has no authentication of its own. With `[agi] shared_key` a request
without the dialplan's `key=` argument is refused before anything is played;
with `[agi] refuse_unknown_calls` a request for a Linkedid AMI never saw is
refused while AMI is connected. Driven over TCP against the running service
and the simulated PBX.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr.config.settings import Config
from ivr.runtime.service import Service
from ivr.sim import CallPlan, SimulatedPbx, Turn
from storage.database import upgrade
from tests.helpers.agi_peer import AgiPeer
from tests.helpers.stack import PBX, service_config, started_pbx, survey_reader

KEY = "k3y-0f-th1s-1nstall4t10n-0123456789"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[SimulatedPbx, Config]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    try:
        yield pbx, service_config(pbx.ami_port, url, agi_port)
    finally:
        await pbx.stop()


async def start(config: Config, **agi: Any) -> Service:
    service = Service(dataclasses.replace(config, agi=dataclasses.replace(config.agi, **agi)))
    await service.start()
    assert service.ami is not None
    assert await service.ami.wait_logged_in(5.0)
    return service


def plan(*arguments: str) -> CallPlan:
    return CallPlan(
        survey=(Turn.keys("3", at=0.01), Turn.keys("2", at=0.01)),
        agi_args=("${CHANNEL(linkedid)}", *arguments),
    )


@pytest.mark.parametrize(
    ("arguments", "surveyed"),
    [
        ((f"key={KEY}",), True),
        ((), False),
        (("key=",), False),
        (("key=guess",), False),
        ((f"key={KEY}x",), False),
    ],
)
async def test_with_a_shared_key_only_requests_carrying_it_are_surveyed(
    running: tuple[SimulatedPbx, Config],
    caplog: pytest.LogCaptureFixture,
    arguments: tuple[str, ...],
    surveyed: bool,
) -> None:
    """A refused request hears nothing (no ANSWER, no prompt), stores nothing,
    is counted, and the log names its Linkedid but never the key."""
    pbx, config = running
    service = await start(config, shared_key=KEY)
    try:
        with caplog.at_level(logging.INFO):
            result = await pbx.place_call(plan("optin=", "initiated=", *arguments))
        assert service.writer is not None
        await service.background.drain(5.0)
        await service.writer.flush()
        async with survey_reader(config.database.url) as reader:
            survey = await reader.get_survey(PBX, result.linkedid)
        refused = dict(service.agi_connections_refused()).get("bad_key", 0)
    finally:
        await service.stop(grace=1.0)
    commands = [line.text for line in result.agi_lines if line.sent_by_service]
    log = "\n".join(record.getMessage() for record in caplog.records)
    if surveyed:
        assert survey is not None
        assert ([3, 2], 0) == ([a.value for a in survey.answers], refused)
    else:
        assert (None, [], 1) == (survey, commands, refused)
        assert f"Linkedid={result.linkedid}" in log
    assert KEY not in log


async def test_a_linkedid_ami_never_saw_is_refused_while_ami_is_connected(
    running: tuple[SimulatedPbx, Config],
) -> None:
    """A made-up Linkedid gets no survey; a real call still does."""
    pbx, config = running
    service = await start(config, refuse_unknown_calls=True)
    try:
        forger = await AgiPeer.connect(service.agi_port, args=("1795000000.999",))
        closed_silently = await forger.closed_by_server()
        forger.close()
        real = await pbx.place_call(plan())
        assert service.writer is not None
        await service.background.drain(5.0)
        await service.writer.flush()
        async with survey_reader(config.database.url) as reader:
            forged = await reader.get_survey(PBX, "1795000000.999")
            stored = await reader.get_survey(PBX, real.linkedid)
        refused = dict(service.agi_connections_refused()).get("unknown_call", 0)
    finally:
        await service.stop(grace=1.0)
    assert (True, None, 1) == (closed_silently, forged, refused)
    assert stored is not None
    assert [3, 2] == [a.value for a in stored.answers]


async def test_without_the_option_a_call_unknown_to_ami_is_still_surveyed(
    running: tuple[SimulatedPbx, Config],
) -> None:
    """The default keeps surveying calls AMI missed (a restart mid-call): refusing
    them is a choice an admin makes, not a surprise."""
    _, config = running
    service = await start(config)
    try:
        peer = await AgiPeer.connect(service.agi_port, args=("1795000000.998",))
        first = await peer.command()
        peer.close()
    finally:
        await service.stop(grace=1.0)
    assert first.startswith("GET VARIABLE") or first == "ANSWER"
