"""Real callers surveyed while a local process floods FastAGI with idle connections,
against the same calls with no flood, in the same run.

The service runs in this process; the simulated PBX (bench/sim_process.py,
one-second prompts) and the flooder each in a process of their own. The
flooder keeps `--idle` connections open that never send a header and
reconnects each as soon as the service closes it, as an attacker on the
Asterisk host would. For each case: the share of the calls whose two answers
are stored, and the p99 time from an AGI reply to the next command (the
simulator's side), as ratios to the no-flood baseline.

Usage: python bench/agi_flood.py [--calls 100] [--idle 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from agi_concurrency import SECRET, Simulator, free_port, p99

from ivr.config.settings import AgiConfig, Config, DatabaseConfig, SurveyConfig, WebConfig
from ivr.config.values import AmiConfig
from ivr.runtime.service import Service
from storage.database import create_engine, session_factory, upgrade
from storage.repository import SqlSurveyRepository


async def surveyed(service: Service, linkedids: list[str]) -> int:
    assert service.writer is not None
    await service.background.drain(10.0)
    await service.writer.flush()
    await asyncio.sleep(2.0)  # the calls' rows follow their Hangups
    await service.writer.flush()
    complete = 0
    engine = create_engine(service.config.database.url)
    try:
        repository = SqlSurveyRepository(session_factory(engine))
        for linkedid in linkedids:
            survey = await repository.get_survey("sim", linkedid)
            if survey is not None and sum(a.value is not None for a in survey.answers) == 2:
                complete += 1
    finally:
        await engine.dispose()
    return complete


async def run_case(
    sim: Simulator, service: Service, agi_port: int, calls: int, idle: int
) -> dict[str, Any]:
    flood = None
    if idle:
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.sim.idle_flood",
            str(agi_port),
            str(idle),
            stdout=asyncio.subprocess.PIPE,
        )
        assert flood.stdout is not None
        await flood.stdout.readline()
        await asyncio.sleep(2.0)
    assert service.agi is not None
    before = dict(service.agi.refused)
    try:
        measured = await sim.calls(calls)
    finally:
        if flood is not None:
            flood.kill()
            await flood.wait()
    refused = {k: v - before.get(k, 0) for k, v in service.agi.refused.items()}
    return {
        "surveyed": await surveyed(service, measured["linkedids"]),
        "p99_ms": p99(measured["gaps"]) * 1000,
        "refused": refused,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--idle", type=int, default=2000)
    args = parser.parse_args()
    agi_port = free_port()
    sim = await Simulator.start(agi_port, "--prompts", "short")
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'flood.db'}"
        await upgrade(url)
        config = Config(
            ami=AmiConfig(port=sim.ami_port, username="ivr", secret=SECRET, name="sim"),
            agi=AgiConfig(port=agi_port),
            database=DatabaseConfig(url=url),
            survey=SurveyConfig(answer_timeout=3.0, ten_timeout=1.0),
            web=WebConfig(port=0),
        )
        service = Service(config)
        await service.start()
        try:
            assert service.ami is not None
            assert await service.ami.wait_logged_in(10.0)
            base = await run_case(sim, service, agi_port, args.calls, 0)
            flooded = await run_case(sim, service, agi_port, args.calls, args.idle)
        finally:
            await service.stop(grace=5.0)
            await sim.stop()
    print(f"{args.calls} calls; flood: {args.idle} idle connections, reconnecting at once")
    print("case       surveyed  share  turnaround p99 ms  ratio  refused by the service")
    for label, case in (("no flood", base), ("flood", flooded)):
        print(
            f"{label:<10} {case['surveyed']:>4}/{args.calls:<4}"
            f" {case['surveyed'] / args.calls:>5.2f}"
            f"  {case['p99_ms']:>17.1f}  {case['p99_ms'] / base['p99_ms']:>5.2f}  {case['refused']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
