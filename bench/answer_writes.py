"""Answers written per second: the group-commit writer against one INSERT per answer.

Same database, same run, same number of answers, each durable when counted:
- baseline: plain SQLAlchemy Core, one `INSERT INTO answers` and one COMMIT per
  answer in one session, as a caller's keypress was stored before the writer;
- batched: `GroupCommitWriter.save_answer` from `--callers` surveys at once
  (each saving its two answers), timed until `flush()` returns.

The surveys are opened first (not timed), half for each side, so both write
new rows into the same tables.

Usage: python bench/answer_writes.py [--answers 20000] [--callers 1000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.domain import Answer, CallRecord, SurveyStart
from storage.database import create_engine, session_factory, upgrade
from storage.models import SurveyAnswer
from storage.spool import Spool
from storage.writer import GroupCommitWriter

QUESTIONS = ("agent", "company")


async def open_surveys(writer: GroupCommitWriter, count: int, prefix: str) -> list[int]:
    now = datetime.now(UTC)

    async def one(number: int) -> int:
        linkedid = f"{prefix}.{number}"
        call = CallRecord(pbx="bench", linkedid=linkedid, queue="support")
        start = SurveyStart(
            pbx="bench",
            linkedid=linkedid,
            channel=f"PJSIP/c-{number:08x}",
            uniqueid=linkedid,
            language="en",
            started_at=now,
        )
        survey_id = await writer.begin_survey(call, start)
        assert survey_id is not None
        return survey_id

    return list(await asyncio.gather(*(one(number) for number in range(count))))


async def baseline(engine: AsyncEngine, survey_ids: list[int]) -> float:
    """One INSERT and one COMMIT per answer, in one session."""
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    async with sessions() as session:
        for survey_id in survey_ids:
            for value, question in enumerate(QUESTIONS):
                await session.execute(
                    sa.insert(SurveyAnswer).values(
                        survey_id=survey_id,
                        question=question,
                        value=value + 7,
                        attempts=1,
                        answered_at=now,
                    )
                )
                await session.commit()
    return time.perf_counter() - started


async def batched(writer: GroupCommitWriter, survey_ids: list[int], callers: int) -> float:
    """Each caller saves its surveys' two answers in turn; all callers at once."""
    now = datetime.now(UTC)

    async def caller(mine: list[int]) -> None:
        for survey_id in mine:
            for value, question in enumerate(QUESTIONS):
                await writer.save_answer(survey_id, Answer(question, value + 7, 1, now))
                await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(caller(survey_ids[index::callers]) for index in range(callers)))
    await writer.flush()
    return time.perf_counter() - started


async def measure(label: str, url: str, answers: int, callers: int, spool_dir: Path) -> None:
    await upgrade(url)
    engine = create_engine(url)
    writer = GroupCommitWriter(engine, Spool(spool_dir / f"{label}.jsonl"))
    await writer.start()
    try:
        surveys = answers // len(QUESTIONS)
        prefix = f"{time.time_ns()}"
        for_baseline = await open_surveys(writer, surveys, f"{prefix}.b")
        for_writer = await open_surveys(writer, surveys, f"{prefix}.w")
        base_seconds = await baseline(engine, for_baseline)
        batches_before = writer.batches
        ours_seconds = await batched(writer, for_writer, callers)
        batches = writer.batches - batches_before
    finally:
        await writer.close()
        await engine.dispose()
    written = surveys * len(QUESTIONS)
    base_rate, ours_rate = written / base_seconds, written / ours_seconds
    print(
        f"{label:<9} {written:>8} {callers:>8}  {base_rate:>14,.0f}  {ours_rate:>14,.0f}"
        f"  {written / max(batches, 1):>13.1f}  {ours_rate / base_rate:>7.1f}x",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--postgres", metavar="URL", help="also measure this PostgreSQL database")
    args = parser.parse_args()
    print("database   answers  callers  baseline ans/s   batched ans/s  answers/batch    ratio")
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", f"sqlite+aiosqlite:///{Path(folder) / 'answers.db'}")]
        if args.postgres:
            targets.append(("postgres", args.postgres))
        for label, url in targets:
            await measure(label, url, args.answers, args.callers, Path(folder))


if __name__ == "__main__":
    asyncio.run(main())
