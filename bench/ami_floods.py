"""Memory through AMI floods: the service's AMI path with its bounds, against the same
path with the bounds lifted, in the same run.

A flood server (a process of its own, so its memory is not counted) logs the
client in and then sends one of three floods:

- `list`: QueueStatus, asked at the resync, is answered `EventList: start` and
  then N QueueEntry items that never end;
- `linkedids`: N Newchannel events, each with a new Linkedid, that never hang up;
- `tiny`: N two-line events, sent as fast as the socket takes them.

Each case runs in a fresh child process: an `AmiClient` + `PbxLink` (the
tracker and its consumer, exactly as `ivr-survey run` wires them) with the
default [ami] limits (`bounded`) or with every limit at 10**9 (`unbounded`, as
before the limits existed). The child reports its RSS after login (the
baseline), the peak RSS it sampled every 20 ms during the flood, and the RSS once
the flood is over. Ratios are peak/baseline, and bounded peak/unbounded peak.

Usage: python bench/ami_floods.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FLOOD_SERVER = r"""
import asyncio, sys

MODE, COUNT = sys.argv[1], int(sys.argv[2])

async def flood(writer, action_id):
    if MODE == "list":
        item = (f"Event: QueueEntry\r\nActionID: {action_id}\r\nQueue: support\r\n"
                "Position: 1\r\nChannel: PJSIP/caller-1\r\nUniqueid: 1.1\r\n\r\n").encode()
        for start in range(0, COUNT, 1000):
            writer.write(item * min(1000, COUNT - start))
            await writer.drain()
    elif MODE == "linkedids":
        for start in range(0, COUNT, 1000):
            writer.write(b"".join(
                (f"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/x-{n:08x}\r\n"
                 f"Uniqueid: 1791000000.{n}\r\nLinkedid: 1791000000.{n}\r\n\r\n").encode()
                for n in range(start, min(COUNT, start + 1000))))
            await writer.drain()
    else:
        tiny = b"Event: VarSet\r\nPrivilege: dialplan,all\r\n\r\n"
        for start in range(0, COUNT, 1000):
            writer.write(tiny * min(1000, COUNT - start))
            await writer.drain()
    writer.write(b"Event: FloodDone\r\nPrivilege: system,all\r\n\r\n")
    await writer.drain()

async def serve(reader, writer):
    writer.write(b"Asterisk Call Manager/9.0.0\r\n")
    try:
        while True:
            block = await reader.readuntil(b"\r\n\r\n")
            fields = dict(l.split(": ", 1) for l in block.decode().split("\r\n") if ": " in l)
            name, action_id = fields.get("Action", ""), fields.get("ActionID", "")
            head = f"Response: Success\r\nActionID: {action_id}\r\n"
            if name == "QueueStatus":
                if MODE == "list":
                    writer.write(f"{head}EventList: start\r\nMessage: follows\r\n\r\n".encode())
                    asyncio.create_task(flood(writer, action_id))
                    continue
                writer.write(f"{head}EventList: start\r\n\r\nEvent: QueueStatusComplete\r\n"
                             f"ActionID: {action_id}\r\nEventList: Complete\r\n\r\n".encode())
            elif name == "CoreShowChannels":
                writer.write(f"{head}EventList: start\r\n\r\nEvent: CoreShowChannelsComplete\r\n"
                             f"ActionID: {action_id}\r\nEventList: Complete\r\n\r\n".encode())
                if MODE != "list":
                    asyncio.create_task(flood(writer, action_id))
            else:
                writer.write(f"{head}Message: ok\r\n\r\n".encode())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one_case(mode: str, limits: str, events: int) -> dict[str, Any]:
    from ivr.adapters.ami.pbx_link import Counters, PbxLink  # noqa: PLC0415 - the child imports what it measures
    from ivr.config.pbx import PbxConfig  # noqa: PLC0415 - the child imports what it measures
    from ivr.config.values import AmiConfig  # noqa: PLC0415 - the child imports what it measures
    from ivr.core.domain import CallRecord  # noqa: PLC0415 - the child imports what it measures

    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOOD_SERVER, mode, str(events), stdout=asyncio.subprocess.PIPE
    )
    assert server.stdout is not None
    port = int(await server.stdout.readline())
    lifted = 10**9
    bounds: dict[str, Any] = (
        {}
        if limits == "bounded"
        else {"max_list_items": lifted, "max_tracked_calls": lifted, "max_queued_events": lifted}
    )
    config = AmiConfig(
        host="127.0.0.1",
        port=port,
        secret="flood",  # noqa: S106 - the flood server accepts any login
        name="flood",
        action_timeout=30.0,
        **bounds,
    )
    counters = Counters()
    link = PbxLink(PbxConfig(name="flood", ami=config), retention_seconds=300.0, counters=counters)

    async def write_call(call: CallRecord) -> None:
        return None

    gc.collect()
    link.start(write_call)
    assert link.ami is not None
    await link.ami.wait_logged_in(10.0)
    baseline = rss_mb()
    peak = baseline
    started = time.perf_counter()
    expected = 1 if mode == "list" else events + 1
    while time.perf_counter() - started < 600:
        peak = max(peak, rss_mb())
        done = (
            link.ami.resync_seconds
            if mode == "list"
            else counters.events >= expected and link.queued_events == 0
        )
        if done and (mode != "list" or link.queued_events == 0):
            break
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    peak = max(peak, rss_mb())
    await link.stop(grace=1.0)
    server.kill()
    await server.wait()
    gc.collect()
    return {
        "mode": mode,
        "limits": limits,
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(peak, 1),
        "after_mb": round(rss_mb(), 1),
        "seconds": round(seconds, 1),
        "tracked_calls": link.tracker.tracked_count,
        "evicted_calls": link.tracker.evicted_calls,
        "reading_paused": counters.reading_paused,
        "events_applied": counters.events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--one", nargs=2, metavar=("MODE", "LIMITS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one_case(args.one[0], args.one[1], args.events))))
        return
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for mode in ("list", "linkedids", "tiny"):
        for limits in ("bounded", "unbounded"):
            child = subprocess.run(  # noqa: S603 - this script, fixed arguments
                [sys.executable, __file__, "--events", str(args.events), "--one", mode, limits],
                capture_output=True,
                text=True,
                check=True,
            )
            results[(mode, limits)] = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(results[(mode, limits)]), flush=True)
    print()
    print(f"{args.events:,} events per flood; RSS in MB")
    print("flood      limits     baseline  peak   after  peak/baseline  bounded/unbounded peak")
    for mode in ("list", "linkedids", "tiny"):
        for limits in ("bounded", "unbounded"):
            r = results[(mode, limits)]
            ratio = r["peak_mb"] / results[(mode, "unbounded")]["peak_mb"]
            print(
                f"{mode:<10} {limits:<10} {r['baseline_mb']:>8} {r['peak_mb']:>6} "
                f"{r['after_mb']:>6}  {r['peak_mb'] / r['baseline_mb']:>13.2f}  "
                f"{ratio if limits == 'bounded' else 1.0:>22.2f}"
            )


if __name__ == "__main__":
    main()
