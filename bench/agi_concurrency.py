"""Surveys held open at once, and the p99 AGI turnaround, against a bare baseline.

The simulated PBX runs in its own process (bench/sim_process.py), as Asterisk
would, and starts N calls over N/100 seconds: AMI events replayed from the
Asterisk 22 captures, then a FastAGI survey per call answered on the keypad
(9 for the agent, 1-then-0 for the company, each 0.3 s after the question).
By default the prompts play as long as the English recordings do (a survey
takes about 30 s) and AMI is the account dialplan/manager-ivr-survey.conf
sets up; so 1000 calls are 1000 surveys open at once. `--prompts short`
(one-second prompts, ~400 open at once) leaves the database one second, the
intro, to open each survey before the first question; `--account all`
streams every event class (about 290 a call instead of 30).

Times:
- turnaround: from a reply to the service's next command, what a caller hears
  as a gap between prompts. Taken from the kernel's packet timestamps on
  loopback (bench/wire_capture.py, needs tcpdump and root), which is what
  Asterisk's AGI thread sees; the simulator's own reading, which adds its
  event loop's delays, is printed beside it ("sim p99");
- first command: from the header to the first command (call lookup, the
  policy's history read, the survey row started).

Same simulator process, same calls, one after the other:
- baseline: a bare FastAgiServer route sending the same command shapes with no
  tracking and no database, and a plain AMI login that reads and discards events;
- service: `ivr-survey run`'s Service (tracking, policy, survey machine, every
  answer written) on SQLite, and on PostgreSQL with `--postgres URL`, then every
  answer counted in the database.

Usage: python bench/agi_concurrency.py [--calls 100 1000] [--postgres URL]
           [--prompts spoken|short] [--account shipped|all] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import socket
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import wire_capture

from ivr.adapters.fastagi.server import AgiChannel, FastAgiServer
from ivr.config.settings import AgiConfig, Config, DatabaseConfig, SurveyConfig, WebConfig
from ivr.config.values import AmiConfig
from ivr.runtime.service import Service
from storage.database import create_engine, session_factory, upgrade
from storage.repository import SqlSurveyRepository

HERE = Path(__file__).resolve().parent
# Calls reaching the survey per second: 1000 calls arrive over 10 s.
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
    async def start(cls, agi_port: int, *options: str) -> Simulator:
        """`options` are sim_process.py's: `--account shipped|all`, `--prompts spoken|short`."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "sim_process.py"),
            str(agi_port),
            *options,
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


@contextlib.asynccontextmanager
async def watched(server: FastAgiServer) -> AsyncIterator[Peak]:
    """The most FastAGI sessions open at once while the block runs."""
    peak = Peak()
    watcher = asyncio.create_task(peak.watch(server))
    try:
        yield peak
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def on_the_wire(
    agi_port: int, folder: Path, run: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """`run()`'s measurements, with the wire's when tcpdump can capture."""
    if not wire_capture.available():
        return await run()
    capture = wire_capture.LoopbackCapture(agi_port, folder / "agi.pcap")
    async with capture:
        measured = await run()
    wire = capture.measured()
    measured.update(wire_gaps=wire.gaps, wire_firsts=wire.firsts, wire_broken=wire.broken)
    measured["wire_dropped"] = wire.dropped
    return measured


async def baseline(sim: Simulator, agi_port: int, calls: int) -> dict[str, Any]:
    server = FastAgiServer(bare_route, host="127.0.0.1", port=agi_port)
    await server.start()
    reader = asyncio.create_task(bare_ami_reader(sim.ami_port))
    await asyncio.sleep(0.2)
    async with watched(server) as peak:
        measured = await sim.calls(calls)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await reader
    await server.stop(grace=1.0)
    measured.update(peak=peak.value, stored=None)
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
    assert await svc.ami.wait_logged_in(10.0)
    async with watched(svc.agi) as peak:
        measured = await sim.calls(calls)
    await svc.stop(grace=10.0)
    stored = 0
    engine = create_engine(url)  # a fresh engine to count what is durably stored
    try:
        repository = SqlSurveyRepository(session_factory(engine))
        for linkedid in measured["linkedids"]:
            survey = await repository.get_survey("sim", linkedid)
            if survey is not None:
                stored += sum(1 for answer in survey.answers if answer.value is not None)
    finally:
        await engine.dispose()
    measured.update(peak=peak.value, stored=stored, logins=svc.ami.logins)
    return measured


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000])
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="also run the service on this PostgreSQL database (it is upgraded, then filled)",
    )
    parser.add_argument("--prompts", choices=("spoken", "short"), default="spoken")
    parser.add_argument("--account", choices=("shipped", "all"), default="shipped")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each case, one after another"
    )
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    agi_port = free_port()
    sim = await Simulator.start(agi_port, "--prompts", args.prompts, "--account", args.account)
    wire = "on the wire (tcpdump)" if wire_capture.available() else "SIMULATOR SIDE (no tcpdump)"
    print(f"prompts {args.prompts}, AMI account {args.account}; turnaround {wire}")
    print(
        "run  database  calls  open  turnaround p50 / p99 ms  sim p99  first p99  answers"
        "  | baseline p99  sim p99 | p99 ratio"
    )
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            for run in range(1, args.repeat + 1):
                for calls in args.calls:
                    base = await on_the_wire(
                        agi_port, folder, functools.partial(baseline, sim, agi_port, calls)
                    )
                    report(run, "bare", calls, base, base)
                    targets = [("sqlite", f"sqlite+aiosqlite:///{folder / f'b{run}-{calls}.db'}")]
                    if args.postgres:
                        targets.append(("postgres", args.postgres))
                    for label, url in targets:
                        measure = functools.partial(service, sim, agi_port, calls, url)
                        ours = await on_the_wire(agi_port, folder, measure)
                        report(run, label, calls, ours, base)
    finally:
        await sim.stop()


def report(run: int, label: str, calls: int, ours: dict[str, Any], base: dict[str, Any]) -> None:
    gaps = ours.get("wire_gaps", ours["gaps"])
    firsts = ours.get("wire_firsts", ours["firsts"])
    base_p99 = p99(base.get("wire_gaps", base["gaps"]))
    stored = "-" if ours["stored"] is None else f"{ours['stored']}/{2 * calls}"
    unread = []
    if ours.get("wire_broken"):
        unread.append(f"{ours['wire_broken']} connections with bytes missing from the capture")
    if ours.get("wire_dropped"):
        unread.append(f"{ours['wire_dropped']} packets dropped by the kernel")
    print(
        f"{run:>3}  {label:<8} {calls:>6} {ours['peak']:>5}  "
        f"{statistics.median(gaps) * 1000:>10.2f} / {p99(gaps) * 1000:<9.2f}"
        f" {p99(ours['gaps']) * 1000:>7.2f}  {p99(firsts) * 1000:>9.1f}  {stored:>9}"
        f"  | {base_p99 * 1000:>12.2f}  {p99(base['gaps']) * 1000:>7.2f}"
        f" | {p99(gaps) / base_p99:>9.2f}" + (f"  ({'; '.join(unread)})" if unread else ""),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
