"""Does anything in the service grow without bound? 100,000 calls, then RSS.

The simulated PBX runs in its own process (bench/sim_process.py `soak`) and
places calls at a steady pace: AMI events replayed from the Asterisk 22
captures for every call, a share of them surveyed over FastAGI (two answers),
the others abandoned in the queue or hung up before the survey. The service
runs here, so its RSS is this process's (VmRSS from /proc/self/status).

- baseline: the same service, started and logged in to AMI, idle for
  `--idle` seconds: RSS at its start and end;
- soak: RSS when the soak starts and after 10k, 50k and 100k calls (scaled
  down with `--calls`), with what the service holds per call at that moment
  (tracked calls, AGI sessions, queued writes, background work).

Call tracking keeps an ended call for `--retention` seconds (the service's
`[tracking] retention_seconds`, 300 by default; shorter here so the plateau is
reached early), so RSS should rise to a plateau and then stay flat: growth
between the last two checkpoints is the figure that shows a leak. At the end
every survey answer is counted in the database.

Usage: python bench/soak.py [--calls 100000] [--rate 200] [--share 0.3]
                            [--idle 60] [--retention 30] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from agi_concurrency import SECRET, Simulator, free_port

from ivr.config.settings import (
    AgiConfig,
    Config,
    DatabaseConfig,
    SurveyConfig,
    TrackingConfig,
    WebConfig,
)
from ivr.config.values import AmiConfig
from ivr.runtime.service import Service
from storage.database import create_engine, upgrade

STATUS = Path("/proc/self/status")


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def held(service: Service) -> str:
    """What the service holds per call right now, and the Python objects alive.

    The object count tells a leak of Python objects (it keeps growing) from
    native memory that fills up to a limit (SQLite's page cache, 2 MiB per
    connection, grows with the database; RSS then rises while this stays level).
    """
    writer = service.writer
    return (
        f"{service.calls_tracked():>8} {service.agi_sessions_open():>6} "
        f"{writer.pending if writer else 0:>7} {service.background.pending:>6} "
        f"{service.spool_depth():>6} {len(gc.get_objects()):>8}"
    )


async def soak_checkpoints(sim: Simulator, command: str) -> Any:
    """Send a soak command; yield each progress line as it comes."""
    assert sim.process.stdin is not None
    assert sim.process.stdout is not None
    sim.process.stdin.write(f"{command}\n".encode())
    await sim.process.stdin.drain()
    while True:
        progress: dict[str, Any] = json.loads(await sim.process.stdout.readline())
        yield progress
        if progress.get("end"):
            return


async def count_answers(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = sa.text("SELECT count(*) FROM answers WHERE value IS NOT NULL")
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0, help="calls started per second")
    parser.add_argument("--share", type=float, default=0.3, help="share of calls surveyed")
    parser.add_argument("--idle", type=float, default=60.0, help="baseline idle seconds")
    parser.add_argument("--retention", type=float, default=30.0)
    parser.add_argument("--postgres", metavar="URL", help="run on this (empty) PostgreSQL db")
    parser.add_argument(
        "--account",
        choices=("shipped", "all"),
        default="shipped",
        help="AMI account: dialplan/manager-ivr-survey.conf's, or every class unfiltered",
    )
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    checkpoints = sorted({args.calls // 10, args.calls // 2, args.calls})
    agi_port = free_port()
    sim = await Simulator.start(agi_port, "--account", args.account, "--prompts", "short")
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite+aiosqlite:///{Path(folder) / 'soak.db'}"
        await upgrade(url)
        config = Config(
            ami=AmiConfig(port=sim.ami_port, username="ivr", secret=SECRET, name="sim"),
            agi=AgiConfig(port=agi_port),
            database=DatabaseConfig(url=url, spool_dir=str(Path(folder) / "spool")),
            survey=SurveyConfig(answer_timeout=3.0, ten_timeout=1.0),
            tracking=TrackingConfig(retention_seconds=args.retention),
            web=WebConfig(port=0),
        )
        service = Service(config)
        await service.start()
        try:
            assert service.ami is not None
            assert await service.ami.wait_logged_in(10.0)
            idle_start = rss_mb()
            await asyncio.sleep(args.idle)
            idle_end = rss_mb()
            print(f"baseline: idle {args.idle:.0f} s, RSS {idle_start:.1f} -> {idle_end:.1f} MiB")
            print(
                "   ended  surveyed  RSS MiB  growth MiB  vs idle end  tracked  agi  queued"
                "  bkgnd  spool  objects"
            )
            start = rss_mb()
            ratio = start / idle_end
            print(f"{0:>8} {0:>9} {start:>8.1f} {0:>11.1f} {ratio:>11.2f}x  {held(service)}")
            marks = ",".join(map(str, checkpoints))
            command = f"soak {args.calls} {args.rate} {args.share} {marks}"
            surveyed = failed = 0
            rows: list[float] = []
            async for progress in soak_checkpoints(sim, command):
                surveyed, failed = int(progress["surveyed"]), int(progress["failed"])
                if progress.get("end") and progress["done"] in checkpoints:
                    break  # already printed at its checkpoint
                now = rss_mb()
                rows.append(now)
                print(
                    f"{progress['done']:>8} {surveyed:>9} {now:>8.1f} {now - start:>11.1f}"
                    f" {now / idle_end:>11.2f}x  {held(service)}",
                    flush=True,
                )
            assert service.writer is not None
            await service.background.drain(10.0)
            await service.writer.flush()
        finally:
            await service.stop(grace=5.0)
            await sim.stop()
        stored = await count_answers(url)
    last_half = rows[-1] - rows[-2] if len(rows) >= 2 else float("nan")
    print(
        f"growth between the last two checkpoints: {last_half:+.1f} MiB "
        f"(idle baseline: {idle_end - idle_start:+.1f} MiB); "
        f"answers stored {stored} / given {2 * surveyed}; simulator call errors {failed}"
    )
    if stored != 2 * surveyed:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
