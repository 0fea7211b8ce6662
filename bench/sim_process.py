"""The simulated PBX in a process of its own, driven over stdin, for benchmarks.

Asterisk runs in its own process; benchmarking the service with the simulator
in the same event loop would charge the simulator's work to the service. This
process prints `{"ami_port": N}`, then for each `calls N RAMP` line on stdin
starts N calls spread evenly over RAMP seconds (so their surveys overlap, as at a
shift change, while AMI traffic stays at a rate a PBX produces) and prints one
JSON line with what its FastAGI side measured:
every reply -> next command gap, every header -> first command wait, and the
Linkedids. `quit` ends it.

Usage (by bench/agi_concurrency.py): python bench/sim_process.py AGI_PORT
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys

from ivr.sim import AmiAccount, CallPlan, CallResult, SimulatedPbx, Turn

PROMPT = 1.0
PLAN = CallPlan(
    talk_seconds=120,
    survey=(Turn.keys("9", at=PROMPT + 0.3), Turn.keys("10", at=PROMPT + 0.3, gap=0.25)),
)
ACCOUNT = AmiAccount("ivr", "bench")


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
            _, count, ramp = line.split()
            calls = int(count)
            tasks = []
            for _ in range(calls):
                tasks.append(pbx.start_call(PLAN))
                await asyncio.sleep(float(ramp) / calls)
            results = await asyncio.gather(*tasks)
            print(json.dumps(measure(list(results))), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
