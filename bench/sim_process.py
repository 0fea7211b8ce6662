"""The simulated PBX in a process of its own, driven over stdin, for benchmarks.

Asterisk runs in its own process; benchmarking the service with the simulator
in the same event loop would charge the simulator's work to the service. This
process prints `{"ami_port": N}`, then for each `calls N RAMP` line on stdin
starts N calls spread evenly over RAMP seconds (so their surveys overlap, as at a
shift change, while AMI traffic stays at a rate a PBX produces) and prints one
JSON line with what its FastAGI side measured:
every reply -> next command gap, every header -> first command wait, and the
Linkedids. `quit` ends it.

`soak N RATE SHARE CHECKPOINTS` (bench/soak.py) starts N short calls at RATE
per second, SHARE (0..1) of them surveyed and the rest abandoned in the queue or
hung up by the caller before the survey, keeps nothing per call, and prints
`{"done": K, "surveyed": S}` as the K-th call (each of the comma-separated
CHECKPOINTS) ends, then `{"done": N, ..., "end": true}`.

Usage (by bench/agi_concurrency.py and bench/soak.py): python bench/sim_process.py AGI_PORT
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys

from ivr.sim import AmiAccount, CallPlan, CallResult, Flow, SimulatedPbx, Turn

PROMPT = 1.0
PLAN = CallPlan(
    talk_seconds=120,
    survey=(Turn.keys("9", at=PROMPT + 0.3), Turn.keys("10", at=PROMPT + 0.3, gap=0.25)),
)
ACCOUNT = AmiAccount("ivr", "bench")
SOAK_SURVEYED = CallPlan(
    talk_seconds=5,
    survey=(Turn.keys("9", at=0.05), Turn.keys("8", at=0.05)),
)
SOAK_NOT_SURVEYED = (
    CallPlan(talk_seconds=5, flow=Flow.ABANDON_IN_QUEUE),
    CallPlan(talk_seconds=5, flow=Flow.CALLER_HANGS_UP_BRIDGED),
)


def measure(results: list[CallResult]) -> dict[str, object]:
    gaps: list[float] = []
    firsts: list[float] = []
    worst: list[tuple[float, str, str]] = []
    for result in results:
        lines = result.agi_lines
        first = next((i for i, line in enumerate(lines) if line.sent_by_service), None)
        if first is None:
            continue
        firsts.append(lines[first].at - lines[0].at)
        for index, (reply, command) in enumerate(itertools.pairwise(lines), start=1):
            if index != first and not reply.sent_by_service and command.sent_by_service:
                gaps.append(command.at - reply.at)
                worst.append((command.at - reply.at, reply.text, command.text))
    return {
        "gaps": gaps,
        "firsts": firsts,
        "linkedids": [result.linkedid for result in results],
        "worst": sorted(worst, reverse=True)[:8],
        "closed_by_service": sum(1 for result in results if result.agi_closed_by_service),
    }


async def main(agi_port: int) -> None:
    loop = asyncio.get_running_loop()
    async with SimulatedPbx(
        name="sim",
        accounts=(ACCOUNT,),
        agi_port=agi_port,
        time_scale=0.02,
        prompt_seconds=PROMPT,
    ) as pbx:
        print(json.dumps({"ami_port": pbx.ami_port}), flush=True)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line or line == "quit":
                return
            if line.startswith("soak "):
                await soak(pbx, *line.split()[1:])
                continue
            _, count, ramp = line.split()
            calls = int(count)
            tasks = []
            for _ in range(calls):
                tasks.append(pbx.start_call(PLAN))
                await asyncio.sleep(float(ramp) / calls)
            results = await asyncio.gather(*tasks)
            print(json.dumps(measure(list(results))), flush=True)


async def soak(pbx: SimulatedPbx, count: str, rate: str, share: str, checkpoints: str) -> None:
    """Calls at a steady pace, nothing kept per call, progress at each checkpoint."""
    total, per_second, surveyed_share = int(count), float(rate), float(share)
    marks = {int(mark) for mark in checkpoints.split(",")}
    progress = {"done": 0, "surveyed": 0, "failed": 0}
    running: set[asyncio.Task[CallResult]] = set()

    def finished(task: asyncio.Task[CallResult]) -> None:
        running.discard(task)
        progress["done"] += 1
        if task.cancelled() or task.exception() is not None:
            progress["failed"] += 1
        if progress["done"] in marks:
            print(json.dumps(progress), flush=True)

    loop = asyncio.get_running_loop()
    started = loop.time()
    for number in range(total):
        if int((number + 1) * surveyed_share) > int(number * surveyed_share):
            progress["surveyed"] += 1
            plan = SOAK_SURVEYED
        else:
            plan = SOAK_NOT_SURVEYED[number % 2]
        task = pbx.start_call(plan)
        running.add(task)
        task.add_done_callback(finished)
        delay = started + (number + 1) / per_second - loop.time()
        await asyncio.sleep(max(0.0, delay))
    while running:
        await asyncio.wait(set(running))
    print(json.dumps({**progress, "end": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
