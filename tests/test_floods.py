"""Floods from a local process do not starve real callers, nor fill the log.

The service runs with the simulated PBX; a separate process (so it has a core
of its own, as an attacker would) opens idle FastAGI connections, reconnecting
each as soon as the service closes it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.service import Service
from ivr.sim import CallPlan, Turn
from storage.database import create_engine, upgrade
from tests.test_service_e2e import PBX, service_config, started_pbx

IDLE_FLOOD = textwrap.dedent(
    """
    import asyncio, sys

    async def idle(port):
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            try:
                await reader.read()
            except OSError:
                pass
            writer.close()

    async def main(port, count):
        tasks = [asyncio.create_task(idle(port)) for _ in range(count)]
        print("flooding", flush=True)
        await asyncio.gather(*tasks)

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
    """
)


async def test_2000_idle_fastagi_connections_leave_every_real_caller_surveyed(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Idle connections never take a survey's slot (they have a cap of their own,
    the longest-silent closed first) and their closing is logged a few times,
    not once each."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    await upgrade(url)
    pbx, agi_port = await started_pbx()
    service = Service(service_config(pbx.ami_port, url, agi_port))
    flood: asyncio.subprocess.Process | None = None
    try:
        await service.start()
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            IDLE_FLOOD,
            str(agi_port),
            "2000",
            stdout=asyncio.subprocess.PIPE,
        )
        assert flood.stdout is not None
        assert b"flooding\n" == await asyncio.wait_for(flood.stdout.readline(), 10.0)
        await asyncio.sleep(2.0)
        with caplog.at_level(logging.WARNING, logger="ivr.fastagi"):
            results = await asyncio.gather(
                *(
                    pbx.place_call(
                        CallPlan(survey=(Turn.keys("9", at=0.01), Turn.keys("7", at=0.01)))
                    )
                    for _ in range(9)
                )
            )
        assert service.agi is not None
        refused = dict(service.agi.refused)
        flood.kill()
        await flood.wait()
        assert service.writer is not None
        assert service.repository is not None
        surveyed: list[tuple[int | None, ...] | None] = []
        # The calls' rows follow their Hangups, which queue behind the flood's work.
        for _ in range(100):
            await service.background.drain(1.0)
            await service.writer.flush()
            surveyed = []
            for result in results:
                survey = await service.repository.get_survey(PBX, result.linkedid)
                surveyed.append(tuple(a.value for a in survey.answers) if survey else None)
            if None not in surveyed:
                break
            await asyncio.sleep(0.1)
    finally:
        if flood is not None and flood.returncode is None:
            flood.kill()
            await flood.wait()
        await service.stop(grace=2.0)
        await pbx.stop()
    warnings = [
        r for r in caplog.records if r.name == "ivr.fastagi" and r.levelno >= logging.WARNING
    ]
    assert [(9, 7)] * 9 == surveyed
    assert True is (refused.get("evicted", 0) + refused.get("no_header", 0) > 2000)
    assert True is (len(warnings) <= 6), [r.getMessage() for r in warnings]


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
