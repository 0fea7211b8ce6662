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

`--account shipped` (the default) is the AMI account an admin installs from
dialplan/manager-ivr-survey.conf: its read classes and event filters are read
from that file, so the service gets what it would get in production (about 30
events a call). `--account all` reads every class with no filter (about 290).

`--prompts spoken` (the default) plays each prompt for as long as the English
recording `ivr-survey prompts build` makes (the intro 12.7 s, the agent
question 9.0 s, ...), so a survey lasts about 30 s; `--prompts short` plays
every prompt for one second, which leaves the database ~1 s (the intro) to
open the survey before the first question instead of ~13 s.

Usage (by bench/agi_concurrency.py and bench/soak.py):
python bench/sim_process.py AGI_PORT [--account shipped|all] [--prompts spoken|short]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import sys
from pathlib import Path

from ivr.sim import AmiAccount, CallPlan, CallResult, Flow, SimulatedPbx, Turn
from tests.helpers.asterisk_conf import classes, event_filters, excluded_event_names, load_conf

SHIPPED_MANAGER_CONF = Path(__file__).resolve().parents[1] / "dialplan" / "manager-ivr-survey.conf"
USERNAME, SECRET = "ivr", "bench"
SHORT_PROMPT = 1.0
# Seconds of each English prompt as `ivr-survey prompts build --lang en` writes it
# (espeak-ng, measured with soxi).
SPOKEN_PROMPTS = {
    "ivr-survey/intro": 12.7,
    "ivr-survey/agent-question": 9.0,
    "ivr-survey/company-question": 6.0,
    "ivr-survey/invalid": 7.4,
    "ivr-survey/no-input": 2.2,
    "ivr-survey/thanks": 2.5,
    "ivr-survey/goodbye": 0.7,
}
# Every caller answers 9 for the agent and 10 for the company, 0.3 s after each
# question has played out (so through WAIT FOR DIGIT, the 1-then-0 path included).
AFTER_QUESTION = 0.3


_CALLERS = itertools.count(1)


def from_next_caller(plan: CallPlan) -> CallPlan:
    """Each call from a caller of its own, as in a contact centre (one number for
    every call would make a single caller with a survey history of thousands)."""
    return dataclasses.replace(plan, caller_number=f"+1555{next(_CALLERS):07d}")


def shipped_account() -> AmiAccount:
    """The listener account of dialplan/manager-ivr-survey.conf, as the simulator applies it."""
    conf = load_conf(SHIPPED_MANAGER_CONF)
    listener = next(c for c in conf.effective() if c.get("read") is not None)
    return AmiAccount(
        USERNAME,
        SECRET,
        read=classes(listener.get("read")),
        write=classes(listener.get("write")),
        excluded_events=excluded_event_names(event_filters(listener)),
    )


def survey_plan(durations: dict[str, float], default: float) -> CallPlan:
    agent = durations.get("ivr-survey/agent-question", default) + AFTER_QUESTION
    company = durations.get("ivr-survey/company-question", default) + AFTER_QUESTION
    return CallPlan(
        talk_seconds=120,
        survey=(Turn.keys("9", at=agent), Turn.keys("10", at=company, gap=0.25)),
    )


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


async def main(agi_port: int, account: AmiAccount, durations: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    plan = survey_plan(durations, SHORT_PROMPT)
    async with SimulatedPbx(
        name="sim",
        accounts=(account,),
        agi_port=agi_port,
        time_scale=0.02,
        prompt_seconds=SHORT_PROMPT,
        prompt_durations=durations,
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
                tasks.append(pbx.start_call(from_next_caller(plan)))
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
        task = pbx.start_call(from_next_caller(plan))
        running.add(task)
        task.add_done_callback(finished)
        delay = started + (number + 1) / per_second - loop.time()
        await asyncio.sleep(max(0.0, delay))
    while running:
        await asyncio.wait(set(running))
    print(json.dumps({**progress, "end": True}), flush=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("agi_port", type=int)
    parser.add_argument("--account", choices=("shipped", "all"), default="shipped")
    parser.add_argument("--prompts", choices=("spoken", "short"), default="spoken")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    chosen = shipped_account() if args.account == "shipped" else AmiAccount(USERNAME, SECRET)
    asyncio.run(main(args.agi_port, chosen, SPOKEN_PROMPTS if args.prompts == "spoken" else {}))
