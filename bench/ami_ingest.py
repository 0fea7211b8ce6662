"""AMI ingest throughput: the service's path against panoramisk parsing alone.

Both sides get the same bytes in the same run: the Asterisk 22 capture of a
full queue call with survey (`ami-queue-call-survey.txt`, ~290 events, all
classes), repeated with fresh Uniqueids/Linkedids per copy so the tracker sees
N distinct calls, fed in 4 KiB chunks as a socket would deliver them.

- baseline: panoramisk 1.4 `AMIProtocol.data_received` with a factory that
  only counts events (its parser, no tracking);
- service: our `Utf8AmiProtocol` -> `AmiClient.dispatch` -> `AmiEvent` ->
  the service's consumer (`Service._apply`: restart check, `CallTracker.feed`,
  queue of finished calls), exactly as `ivr-survey run` wires it.

Usage: python bench/ami_ingest.py [--calls 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from ivr.adapters.ami.client import AmiClient, Utf8AmiProtocol
from ivr.adapters.ami.pbx_link import Counters, PbxLink
from ivr.config.pbx import PbxConfig
from ivr.config.values import AmiConfig
from ivr.sim.transcript import read_ami

CHUNK = 4096


def capture_bytes(calls: int) -> tuple[bytes, int]:
    """The capture's received stream, `calls` times, each copy with its own ids."""
    messages = [
        m for m in read_ami("ami-queue-call-survey.txt") if not m.sent and m.kind == "Event"
    ]
    one = "".join(
        "".join(f"{name}: {value}\r\n" for name, value in message.headers) + "\r\n"
        for message in messages
    )
    copies = [one.replace("1795329453.", f"{1795329453 + index * 7}.") for index in range(calls)]
    return "".join(copies).encode("utf-8"), len(messages) * calls


class _CountingFactory:
    def __init__(self) -> None:
        self.events = 0
        self.forgetable_actions = ("ping", "login")
        self.awaiting_actions: list[Any] = []

    def dispatch(self, message: Any) -> None:
        self.events += 1

    def connection_lost(self, exc: object) -> None:
        return None


class _NullTransport(asyncio.Transport):
    def write(self, data: Any) -> None:
        return None

    def close(self) -> None:
        return None


def feed(protocol: Any, payload: bytes) -> None:
    for start in range(0, len(payload), CHUNK):
        protocol.data_received(payload[start : start + CHUNK])


def run_baseline(payload: bytes) -> tuple[float, int]:
    protocol = AMIProtocol()
    protocol.connection_made(_NullTransport())
    factory = _CountingFactory()
    protocol.factory = factory
    protocol.encoding = "utf8"
    started = time.perf_counter()
    feed(protocol, payload)
    return time.perf_counter() - started, factory.events


def run_service_path(payload: bytes) -> tuple[float, int]:
    pbx = PbxConfig("bench", AmiConfig(name="bench"))
    link = PbxLink(pbx, retention_seconds=300.0, counters=Counters())
    applied = 0

    def sink(event: Any) -> None:
        nonlocal applied
        link._apply(event)  # the consumer task's body, run inline to time it alone
        applied += 1

    client = AmiClient(pbx.ami, sink)
    protocol = Utf8AmiProtocol()
    protocol.connection_made(_NullTransport())
    protocol.factory = client
    started = time.perf_counter()
    feed(protocol, payload)
    return time.perf_counter() - started, applied


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    payload, expected = capture_bytes(args.calls)
    baseline_rates, service_rates = [], []
    for _ in range(args.repeat):
        seconds, events = run_baseline(payload)
        assert events == expected, (events, expected)
        baseline_rates.append(events / seconds)
        seconds, events = run_service_path(payload)
        assert events == expected, (events, expected)
        service_rates.append(events / seconds)
    baseline = statistics.median(baseline_rates)
    service = statistics.median(service_rates)
    print(f"events per run: {expected} ({args.calls} calls, {len(payload) / 1e6:.1f} MB)")
    print(f"panoramisk parse only : {baseline:>10,.0f} events/s (median of {args.repeat})")
    print(f"service ingest+track  : {service:>10,.0f} events/s (median of {args.repeat})")
    print(f"ratio service/baseline: {service / baseline:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
