"""Surveys held open at once, and the p99 AGI turnaround, against a bare baseline.

The simulated PBX runs in its own process (bench/sim_process.py), as Asterisk
would, and starts N calls over N/100 seconds: AMI events replayed from the
Asterisk 22 capture (~290 per call, all classes), then a FastAGI survey per call
with one-second prompts, answered on the keypad. With surveys of about ten
seconds, 1000 calls are 1000 surveys open at once. Times are taken on the
simulator's side of each FastAGI socket:

- turnaround: from a reply sent to the service's next command received, what a
  caller hears as a gap between prompts;
- first command: from the header sent to the first command (call lookup and
  the survey row written).

Same simulator process, same calls, one after the other:
- baseline: a bare FastAgiServer route sending the same command shapes with no
  tracking and no database, and a plain AMI login that reads and discards events;
- service: `ivr-survey run`'s Service on SQLite (tracking, policy, survey
  machine, every answer written), then every answer counted in the database.

Usage: python bench/agi_concurrency.py [--calls 100 300 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from ivr.config import AgiConfig, AmiConfig, Config, DatabaseConfig, SurveyConfig, WebConfig
from ivr.fastagi import AgiChannel, FastAgiServer
from ivr.service import Service
from storage.database import upgrade

HERE = Path(__file__).resolve().parent
# Calls reaching the survey per second: 1000 calls arrive over 10 s and, with
# surveys of ~10 s, are all open at once.
CALLS_PER_SECOND = 100
SECRET = "bench"  # noqa: S105 - the simulator's own test account


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


class Simulator:
    """The child process running the simulated PBX."""

    def __init__(self, process: asyncio.subprocess.Process, ami_port: int) -> None:
        self.process = process
        self.ami_port = ami_port

    @classmethod
    async def start(cls, agi_port: int) -> Simulator:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "sim_process.py"),
            str(agi_port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,
        )
        assert process.stdout is not None
        hello = json.loads(await process.stdout.readline())
        return cls(process, int(hello["ami_port"]))

    async def calls(self, count: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        ramp = count / CALLS_PER_SECOND
        self.process.stdin.write(f"calls {count} {ramp}\n".encode())
        await self.process.stdin.drain()
        result: dict[str, Any] = json.loads(await self.process.stdout.readline())
        return result

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        await self.process.wait()


async def bare_route(channel: AgiChannel) -> None:
    """The same command shapes as a survey, with nothing behind them."""
    await channel.command("ANSWER")
    for prompt in ("ivr-survey/intro", "ivr-survey/agent-question", "ivr-survey/company-question"):
        escapes = '""' if prompt == "ivr-survey/intro" else '"0123456789*#"'
        reply = await channel.command(f"STREAM FILE {prompt} {escapes}")
        if reply.result == "0" and prompt != "ivr-survey/intro":
            reply = await channel.command("WAIT FOR DIGIT 3000")
            if reply.result == "49":
                await channel.command("WAIT FOR DIGIT 1000")
    await channel.command('STREAM FILE ivr-survey/thanks ""')


async def bare_ami_reader(port: int) -> None:
    """Log in and read every event without doing anything with it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"Action: Login\r\nUsername: ivr\r\nSecret: {SECRET}\r\n\r\n".encode())
    await writer.drain()
    try:
        while await reader.read(1 << 16):
            pass
    finally:
        writer.close()


class Peak:
    def __init__(self) -> None:
        self.value = 0

    async def watch(self, server: FastAgiServer) -> None:
        while True:
            self.value = max(self.value, server.open_sessions)
            await asyncio.sleep(0.005)


async def baseline(sim: Simulator, agi_port: int, calls: int) -> dict[str, Any]:
    server = FastAgiServer(bare_route, host="127.0.0.1", port=agi_port)
    await server.start()
    reader = asyncio.create_task(bare_ami_reader(sim.ami_port))
    await asyncio.sleep(0.2)
    measured = await sim.calls(calls)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await reader
    await server.stop(grace=1.0)
    return measured


async def service(sim: Simulator, agi_port: int, calls: int, url: str) -> dict[str, Any]:
    await upgrade(url)
    config = Config(
        ami=AmiConfig(port=sim.ami_port, username="ivr", secret=SECRET, name="sim"),
        agi=AgiConfig(port=agi_port),
        database=DatabaseConfig(url=url),
        survey=SurveyConfig(answer_timeout=3.0, ten_timeout=1.0),
        web=WebConfig(port=0),
    )
    svc = Service(config)
    await svc.start()
    assert svc.ami is not None
    assert svc.agi is not None
    assert svc.repository is not None
    assert await svc.ami.wait_logged_in(10.0)
    peak = Peak()
    watcher = asyncio.create_task(peak.watch(svc.agi))
    measured = await sim.calls(calls)
    watcher.cancel()
    await svc.stop(grace=10.0)
    await svc.start()  # a fresh engine to count what is durably stored
    stored = 0
    for linkedid in measured["linkedids"]:
        survey = await svc.repository.get_survey("sim", linkedid)
        if survey is not None:
            stored += sum(1 for answer in survey.answers if answer.value is not None)
    await svc.stop(grace=1.0)
    measured.update(peak=peak.value, stored=stored, logins=svc.ami.logins)
    return measured


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="also run the service on this PostgreSQL database (it is upgraded, then filled)",
    )
    args = parser.parse_args()
    agi_port = free_port()
    sim = await Simulator.start(agi_port)
    print(
        "database calls  open-at-once  turnaround p50 / p99 ms  first-command p99 ms"
        "  answers stored  | baseline turnaround p99 / first p99 ms  | p99 ratio"
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            for calls in args.calls:
                base = await baseline(sim, agi_port, calls)
                targets = [("sqlite", f"sqlite+aiosqlite:///{Path(folder) / f'b{calls}.db'}")]
                if args.postgres:
                    targets.append(("postgres", args.postgres))
                for label, url in targets:
                    ours = await service(sim, agi_port, calls, url)
                    report(label, calls, ours, base)
    finally:
        await sim.stop()


def report(label: str, calls: int, ours: dict[str, Any], base: dict[str, Any]) -> None:
    ours_p99, base_p99 = p99(ours["gaps"]), p99(base["gaps"])
    print(
        f"{label:<8} {calls:>5}  {ours['peak']:>12}  "
        f"{statistics.median(ours['gaps']) * 1000:>10.2f} / {ours_p99 * 1000:<9.2f}"
        f"  {p99(ours['firsts']) * 1000:>20.1f}  "
        f"{ours['stored']:>6}/{2 * calls:<6}"
        f"  | {base_p99 * 1000:>22.2f} / {p99(base['firsts']) * 1000:<10.1f}"
        f"  | {ours_p99 / base_p99:>8.2f}",
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
