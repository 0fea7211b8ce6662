"""Floods from a local process do not starve real callers, nor fill the log.

The service runs with the simulated PBX; a separate process (so it has a core
of its own, as an attacker would) opens idle FastAGI connections, reconnecting
each as soon as the service closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import sqlalchemy as sa

from ivr.adapters.ami.client import AmiClient
from ivr.config.values import AmiConfig
from ivr.core.domain import AmiEvent
from ivr.runtime.service import Service
from ivr.sim import CallPlan, Turn
from storage.database import create_engine, upgrade
from tests.helpers.stack import PBX, service_config, started_pbx, survey_reader

T = TypeVar("T")


async def test_2000_idle_fastagi_connections_leave_every_real_caller_surveyed(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Idle connections never take a survey's slot (they have a cap of their own,
    the longest-silent closed first) and their closing is logged a few times,
    not once each. The simulated PBX runs on an event loop of its own, as
    Asterisk runs apart from the service: its header is on the wire the moment
    it connects, however busy the service's loop is with the flood."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    apart = LoopThread()
    pbx, agi_port = await apart.run(started_pbx())
    service = Service(service_config(pbx.ami_port, url, agi_port))
    flood: asyncio.subprocess.Process | None = None
    try:
        await service.start()
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.sim.idle_flood",
            str(agi_port),
            "2000",
            stdout=asyncio.subprocess.PIPE,
        )
        assert flood.stdout is not None
        assert b"flooding\n" == await asyncio.wait_for(flood.stdout.readline(), 10.0)
        await asyncio.sleep(2.0)
        with caplog.at_level(logging.WARNING, logger="ivr.adapters.fastagi.server"):
            results = await asyncio.gather(
                *(
                    apart.run(
                        pbx.place_call(
                            CallPlan(survey=(Turn.keys("9", at=0.01), Turn.keys("7", at=0.01)))
                        )
                    )
                    for _ in range(9)
                )
            )
        assert service.agi is not None
        refused = dict(service.agi.refused)
        flood.kill()
        await flood.wait()
        assert service.writer is not None
        surveyed: list[tuple[int | None, ...] | None] = []
        # The calls' rows follow their Hangups, which queue behind the flood's work.
        async with survey_reader(service.config.database.url) as reader:
            for _ in range(100):
                await service.background.drain(1.0)
                await service.writer.flush()
                surveyed = []
                for result in results:
                    survey = await reader.get_survey(PBX, result.linkedid)
                    surveyed.append(tuple(a.value for a in survey.answers) if survey else None)
                if None not in surveyed:
                    break
                await asyncio.sleep(0.1)
    finally:
        if flood is not None and flood.returncode is None:
            flood.kill()
            await flood.wait()
        await service.stop(grace=2.0)
        await apart.run(pbx.stop())
        apart.stop()
    warnings = [
        r
        for r in caplog.records
        if r.name == "ivr.adapters.fastagi.server" and r.levelno >= logging.WARNING
    ]
    assert [(9, 7)] * 9 == surveyed
    assert True is (refused.get("evicted", 0) + refused.get("no_header", 0) > 2000)
    assert True is (len(warnings) <= 6), [r.getMessage() for r in warnings]


class LoopThread:
    """An event loop in a thread of its own, for a peer that must not wait on ours."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        self.loop.close()


QUEUE_EVENTS = ("QueueCallerJoin", "QueueCallerAbandon", "AgentConnect", "AgentComplete")
REQUIRED = ("Queue", "Channel", "Uniqueid", "Linkedid")


def malformed_queue_event(number: int) -> list[tuple[str, str]]:
    """A queue event with one or more of the fields a call needs missing or empty."""
    chooser = random.Random(number)
    linkedid = f"1790000000.{number}"
    headers = {
        "Privilege": "agent,all",
        "Channel": f"PJSIP/junk-{number:08x}",
        "Uniqueid": linkedid,
        "Linkedid": linkedid,
        "Queue": "support",
        "MemberName": "Agent Junk",
        "Interface": "PJSIP/2999",
        "DestChannel": f"PJSIP/2999-{number:08x}",
        "DestUniqueid": f"1790000000.{number}9",
        "HoldTime": "3",
        "TalkTime": "10",
        "Reason": "agent",
    }
    for name in chooser.sample(REQUIRED, chooser.randint(1, len(REQUIRED))):
        if chooser.random() < 0.5:
            del headers[name]
        else:
            headers[name] = ""
    return [("Event", QUEUE_EVENTS[number % len(QUEUE_EVENTS)]), *headers.items()]


def hangup(number: int) -> list[tuple[str, str]]:
    linkedid = f"1790000000.{number}"
    return [
        ("Event", "Hangup"),
        ("Privilege", "call,all"),
        ("Channel", f"PJSIP/junk-{number:08x}"),
        ("Uniqueid", linkedid),
        ("Linkedid", linkedid),
        ("Cause", "16"),
    ]


async def test_queue_events_missing_what_a_call_needs_store_no_call_and_few_warnings(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """10,000 queue events each lacking a Queue, Channel, Uniqueid or Linkedid (or
    carrying it empty), each followed by its channel's Hangup: no call row, a
    few rate-limited warnings, and a real call after them is stored as usual."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    service = Service(service_config(pbx.ami_port, url, agi_port))
    try:
        await service.start()
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        with caplog.at_level(logging.WARNING):
            for number in range(10_000):
                pbx.publish_event(malformed_queue_event(number))
                pbx.publish_event(hangup(number))
                if number % 500 == 0:
                    await asyncio.sleep(0)
            real = await pbx.place_call(
                CallPlan(survey=(Turn.keys("8", at=0.01), Turn.keys("6", at=0.01)))
            )
            assert service.writer is not None
            await asyncio.sleep(1.0)
            await service.background.drain(5.0)
            await service.writer.flush()
        refused = service.counters.events_refused
    finally:
        await service.stop(grace=2.0)
        await pbx.stop()
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            linkedids = (await connection.execute(sa.text("SELECT linkedid FROM calls"))).all()
    finally:
        await engine.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(real.linkedid,)] == [tuple(row) for row in linkedids]
    assert 10_000 == refused
    assert True is (len(warnings) <= 3), warnings


def stray_channel(number: int) -> list[tuple[str, str]]:
    """A channel event of a call never seen again: a new Linkedid each time."""
    linkedid = f"1791000000.{number}"
    return [
        ("Event", "Newchannel"),
        ("Privilege", "call,all"),
        ("Channel", f"PJSIP/stray-{number:08x}"),
        ("Uniqueid", linkedid),
        ("Linkedid", linkedid),
    ]


async def test_a_flood_of_new_linkedids_is_bounded_by_max_tracked_calls(tmp_path: Path) -> None:
    """20,000 channels that never hang up, with [ami] max_tracked_calls = 2000:
    the tracker never holds more than the cap (the longest silent go first, and
    are counted), and a real call in the middle of the flood is surveyed."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    config = service_config(pbx.ami_port, url, agi_port)
    config = dataclasses.replace(
        config, ami=dataclasses.replace(config.ami, max_tracked_calls=2000)
    )
    service = Service(config)
    try:
        await service.start()
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        tracker = service.links[PBX].tracker
        most = 0
        real = pbx.start_call(CallPlan(survey=(Turn.keys("9", at=0.01), Turn.keys("8", at=0.01))))
        for number in range(20_000):
            pbx.publish_event(stray_channel(number))
            if number % 200 == 0:
                await asyncio.sleep(0)
                most = max(most, tracker.tracked_count)
        result = await real
        assert service.writer is not None
        survey = None
        async with survey_reader(service.config.database.url) as reader:
            for _ in range(100):
                await service.writer.flush()
                most = max(most, tracker.tracked_count)
                survey = await reader.get_survey(PBX, result.linkedid)
                if survey is not None:
                    break
                await asyncio.sleep(0.1)
        # The flood's last events may still be on their way to the tracker.
        for _ in range(200):
            if service.counters.events >= 20_000 and service.links[PBX].queued_events == 0:
                break
            await asyncio.sleep(0.05)
        most = max(most, tracker.tracked_count)
        evicted = tracker.evicted_calls
    finally:
        await service.stop(grace=2.0)
        await pbx.stop()
    assert survey is not None
    assert ((9, 8), True, True) == (
        tuple(a.value for a in survey.answers),
        most <= 2000,
        evicted >= 18_000,
    )


async def test_a_full_event_queue_pauses_reading_and_loses_no_event(tmp_path: Path) -> None:
    """With [ami] max_queued_events = 500, 30,000 events sent at once: the
    connection is read no faster than the tracker applies them (reading paused
    at least once), and every event is applied, none dropped (the count also
    has the simulator's own few, such as FullyBooted)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    config = service_config(pbx.ami_port, url, agi_port)
    config = dataclasses.replace(config, ami=dataclasses.replace(config.ami, max_queued_events=500))
    service = Service(config)
    try:
        await service.start()
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        link = service.links[PBX]
        before = service.counters.events
        for number in range(30_000):
            pbx.publish_event(stray_channel(number))
        for _ in range(300):
            if service.counters.events - before >= 30_000:
                break
            await asyncio.sleep(0.02)
        applied = service.counters.events - before
        paused = service.counters.reading_paused
    finally:
        await service.stop(grace=2.0)
        await pbx.stop()
    assert (True, True, 0) == (applied >= 30_000, paused >= 1, link.queued_events)


class EndlessListAmi:
    """An AMI server whose QueueStatus answer never ends: `items` entries and no
    QueueStatusComplete, then one live event."""

    def __init__(self, items: int) -> None:
        self.items = items
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                fields = dict(
                    line.split(": ", 1) for line in block.decode().split("\r\n") if ": " in line
                )
                name, action_id = fields.get("Action", ""), fields.get("ActionID", "")
                head = f"Response: Success\r\nActionID: {action_id}\r\n"
                if name == "QueueStatus":
                    writer.write(f"{head}EventList: start\r\nMessage: follows\r\n\r\n".encode())
                    item = (
                        f"Event: QueueEntry\r\nActionID: {action_id}\r\nQueue: support\r\n"
                        "Position: 1\r\nChannel: PJSIP/caller-1\r\nUniqueid: 1.1\r\n\r\n"
                    ).encode()
                    for start in range(0, self.items, 1000):
                        writer.write(item * min(1000, self.items - start))
                        await writer.drain()
                    writer.write(
                        b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/live-1\r\n"
                        b"Uniqueid: 2.1\r\nLinkedid: 2.1\r\n\r\n"
                    )
                elif name in ("CoreShowChannels",):
                    writer.write(f"{head}EventList: start\r\n\r\n".encode())
                    writer.write(
                        f"Event: CoreShowChannelsComplete\r\nActionID: {action_id}\r\n"
                        "EventList: Complete\r\nListItems: 0\r\n\r\n".encode()
                    )
                else:
                    writer.write(f"{head}Message: ok\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def test_a_list_answer_that_never_ends_collects_at_most_max_list_items() -> None:
    """QueueStatus answered by 20,000 items and no end, with [ami] max_list_items
    = 1000: the resync gives up on it with a warning, the items past the bound
    are dropped (never collected, never taken for live events), and the live
    event after them still arrives."""
    fake = EndlessListAmi(20_000)
    port = await fake.start()
    received: list[AmiEvent] = []
    resynced: list[list[AmiEvent]] = []
    config = AmiConfig(
        host="127.0.0.1", port=port, secret="x", max_list_items=1000, action_timeout=5.0
    )

    async def resync() -> None:
        resynced.append(await client.resync())

    client = AmiClient(config, received.append, on_login=resync)
    running = asyncio.create_task(client.run())
    try:
        for _ in range(200):
            if any(event.name == "Newchannel" for event in received):
                break
            await asyncio.sleep(0.05)
        dropped = client.dropped_list_items
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await fake.stop()
    assert ["Newchannel"] == [event.name for event in received]
    assert [["CoreShowChannelsComplete"]] == [[event.name for event in r] for r in resynced]
    # The bound counts the answer's messages: its Response and 999 items.
    assert 20_000 - 999 == dropped


async def test_slow_http_clients_are_bounded_and_a_survey_keeps_its_pace(tmp_path: Path) -> None:
    """300 clients that send half a request and stall, against [web]
    max_connections = 100 and header_timeout = 1 s: at most 100 are ever open,
    the rest are closed at once, the stalled ones are closed after a second,
    the refusals are counted, a survey meanwhile runs as usual, and the
    dashboard answers once they are gone."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    config = service_config(pbx.ami_port, url, agi_port)
    config = dataclasses.replace(
        config, web=dataclasses.replace(config.web, max_connections=100, header_timeout=1.0)
    )
    service = Service(config)
    slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        await service.start()
        assert service.ami is not None
        assert service.web is not None
        assert await service.ami.wait_logged_in(5.0)
        port = service.web.port
        for _ in range(300):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            slow.append((reader, writer))
        await asyncio.sleep(0.2)
        most_open = service.web.connections.open
        started = asyncio.get_running_loop().time()
        result = await pbx.place_call(
            CallPlan(survey=(Turn.keys("9", at=0.01), Turn.keys("9", at=0.01)))
        )
        survey_seconds = asyncio.get_running_loop().time() - started
        closed = await asyncio.gather(
            *(asyncio.wait_for(reader.read(), 5.0) for reader, _ in slow),
            return_exceptions=True,
        )
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{service.web.url}/healthz") as reply,
        ):
            healthy = reply.status
        await asyncio.sleep(0.1)
        left_open = service.web.connections.open
        refused = dict(service.web.connections.refused)
        assert service.writer is not None
        survey = None
        async with survey_reader(service.config.database.url) as stored:
            for _ in range(50):
                await service.writer.flush()
                survey = await stored.get_survey(PBX, result.linkedid)
                if survey is not None:
                    break
                await asyncio.sleep(0.1)
    finally:
        for _, writer in slow:
            writer.close()
        await service.stop(grace=2.0)
        await pbx.stop()
    assert survey is not None
    assert (100, 200, 0) == (most_open, healthy, left_open)
    assert [b""] * 300 == [b"" if isinstance(c, ConnectionError) else c for c in closed]
    assert {"max_connections": 200, "header_timeout": 100} == refused
    assert True is (survey_seconds < 5.0), survey_seconds


async def test_out_of_descriptor_accept_errors_are_logged_once_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio reports every failed accept() when the process is out of file
    descriptors (they once filled the log at 4-5 MB/s); the running service
    says it once, with a count next time, and other loop errors still show."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    service = Service(service_config(pbx.ami_port, url, agi_port))
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    try:
        await service.start()
        with caplog.at_level(logging.ERROR):
            for _ in range(1000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
            loop.call_exception_handler({"message": "something else went wrong"})
    finally:
        await service.stop(grace=1.0)
        await pbx.stop()
        loop.set_exception_handler(previous)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert [
        "cannot accept connections: [Errno 24] Too many open files",
        "something else went wrong",
    ] == lines
