"""Whole calls' writes per second through the group-commit writer, against the
same writer running each write's own statements.

A surveyed call writes: the policy decision, the survey start (its caller
waits for the id), two answers, the status, and the call's final record from
AMI. `--callers` calls run at once, each writing in that order, until
`--calls` are done and `flush()` returns; every write is committed when counted.

Same database, same run, same batching (the writer takes what accumulated
while its last transaction ran):
- baseline: each write in a batch runs its own statements, as the writer did
  before batches were grouped (`storage.upserts`' single-write functions:
  about 12 statements a call);
- grouped: the writer as shipped (`storage.grouped_writes`: a few statements
  per batch).

Usage: python bench/call_writes.py [--calls 5000] [--callers 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.core.domain import AgentLeg, Answer, CallRecord, HangupSide, SurveyStart, SurveyStatus
from storage import upserts
from storage.database import create_engine, upgrade
from storage.spool import Spool
from storage.write_requests import (
    BeginSurvey,
    RecordDecision,
    SaveAnswer,
    SaveCall,
    SaveComment,
    Write,
)
from storage.writer import GroupCommitWriter


class PerWriteWriter(GroupCommitWriter):
    """The baseline: the same batches, each write with its own statements."""

    async def _apply(
        self, connection: AsyncConnection, writes: Sequence[Write], *, replaying: bool
    ) -> dict[int, int | None]:
        outcomes: dict[int, int | None] = {}
        for index, write in enumerate(writes):
            if isinstance(write, SaveCall):
                await upserts.merge_call(connection, write.call)
            elif isinstance(write, RecordDecision):
                await upserts.record_decision(connection, write.call, write.decision)
            elif isinstance(write, BeginSurvey):
                outcomes[index] = await upserts.begin_survey(connection, write.call, write.start)
            elif isinstance(write, SaveAnswer):
                row = upserts.answer_row(write.survey_id, write.answer)
                await upserts.save_answers(connection, [row])
            elif isinstance(write, SaveComment):
                await upserts.save_comment(connection, write.survey_id, write.comment)
            else:
                await upserts.finish_survey(
                    connection, write.survey_id, write.status, write.finished_at
                )
        return outcomes


def record(prefix: str, number: int, *, ended: bool) -> CallRecord:
    connected = 1_796_000_000.0 + number
    agent = AgentLeg(
        name="Agent One",
        interface="Local/agent1@agents/n",
        queue="support",
        channel=f"Local/agent1@agents-{number:08x};1",
        connected_at=connected,
        hold_seconds=4,
        talk_seconds=95 if ended else None,
        ended_by=HangupSide.AGENT if ended else None,
    )
    return CallRecord(
        pbx="bench",
        linkedid=f"{prefix}.{number}",
        caller_number=f"+1555{number:07d}",
        caller_key=f"+1555{number:07d}",
        queue="support",
        agents=(agent,),
        hold_seconds=4,
        talk_seconds=95 if ended else None,
        started_at=connected - 4,
        answered_at=connected,
        ended_at=connected + 120 if ended else None,
    )


async def one_call(writer: GroupCommitWriter, prefix: str, number: int) -> None:
    call = record(prefix, number, ended=False)
    now = datetime.now(UTC)
    await writer.record_decision(call, "eligible")
    start = SurveyStart(
        pbx=call.pbx,
        linkedid=call.linkedid,
        channel=f"Local/queue-{number:08x};2",
        uniqueid=call.linkedid,
        language="en",
        started_at=now,
    )
    survey_id = await writer.begin_survey(call, start)
    assert survey_id is not None
    await writer.save_answer(survey_id, Answer("agent", 9, 1, now))
    await writer.save_answer(survey_id, Answer("company", 10, 1, now))
    await writer.finish_survey(survey_id, SurveyStatus.COMPLETED, now)
    await writer.save_call(record(prefix, number, ended=True))


async def run(
    writer: GroupCommitWriter, engine: AsyncEngine, calls: int, callers: int
) -> tuple[float, int]:
    """Seconds for `calls` calls, `callers` at a time, and the statements they took."""
    executed = [0]

    def count(*_: Any) -> None:
        executed[0] += 1

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    prefix = str(time.time_ns())
    numbers = iter(range(calls))

    async def caller() -> None:
        for number in numbers:
            await one_call(writer, prefix, number)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    await writer.flush()
    seconds = time.perf_counter() - started
    sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    return seconds, executed[0]


async def measure(label: str, url: str, calls: int, callers: int, spool_dir: Path) -> None:
    await upgrade(url)
    rates: list[tuple[float, float]] = []
    for kind in (PerWriteWriter, GroupCommitWriter):
        engine = create_engine(url, connections=1)
        writer = kind(engine, Spool(spool_dir / f"{label}-{kind.__name__}.jsonl"))
        await writer.start()
        try:
            seconds, statements = await run(writer, engine, calls, callers)
        finally:
            await writer.close()
            await engine.dispose()
        rates.append((calls / seconds, statements / calls))
    (base_rate, base_statements), (ours_rate, ours_statements) = rates
    print(
        f"{label:<9} {calls:>6} {callers:>8}  {base_rate:>9,.0f} ({base_statements:4.1f})"
        f"  {ours_rate:>9,.0f} ({ours_statements:4.2f})  {ours_rate / base_rate:>6.1f}x",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--callers", type=int, default=200, help="calls writing at once")
    parser.add_argument("--postgres", metavar="URL", help="also measure this PostgreSQL database")
    args = parser.parse_args()
    print("database   calls  callers  baseline calls/s (statements/call)  grouped  ratio")
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", f"sqlite+aiosqlite:///{Path(folder) / 'calls.db'}")]
        if args.postgres:
            targets.append(("postgres", args.postgres))
        for label, url in targets:
            await measure(label, url, args.calls, args.callers, Path(folder))


if __name__ == "__main__":
    asyncio.run(main())
