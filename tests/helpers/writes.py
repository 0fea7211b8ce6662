"""Survey writes for tests, through the service's only write path.

Production writes rows only through `storage.writer.GroupCommitWriter`, which
queues a write and returns before it is committed, and logs a refused write
instead of raising. A test that stores rows and reads them back, or expects a
bad write to be refused, needs each write committed (or refused) before the
call returns: `CommittedWrites` flushes the writer after every write and
raises what the database refused, and reads through `SqlSurveyRepository`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.core.domain import Answer, CallRecord, Comment, SurveyStart, SurveyStatus
from storage.database import session_factory
from storage.repository import SqlSurveyRepository, StoredSurvey
from storage.spool import Spool
from storage.writer import GroupCommitWriter


class CommittedWrites:
    """`ivr.ports.SurveyRepository` whose every write returns once committed."""

    def __init__(self, engine: AsyncEngine, spool: Path) -> None:
        self._refusals: list[BaseException] = []
        self.writer = GroupCommitWriter(engine, Spool(spool), refused=self._refusals.append)
        self.reads = SqlSurveyRepository(session_factory(engine))

    async def _committed(self) -> None:
        """Wait for the writes queued so far; raise the first one refused."""
        await self.writer.flush()
        if self._refusals:
            raise self._refusals.pop(0)

    async def save_call(self, call: CallRecord) -> None:
        await self.writer.save_call(call)
        await self._committed()

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        """The writer raises a refused start itself, through the id it returns."""
        try:
            return await self.writer.begin_survey(call, start)
        finally:
            self._refusals.clear()

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        await self.writer.save_answer(survey_id, answer)
        await self._committed()

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        await self.writer.finish_survey(survey_id, status, finished_at)
        await self._committed()

    async def record_decision(self, call: CallRecord, decision: str) -> None:
        await self.writer.record_decision(call, decision)
        await self._committed()

    async def save_comment(self, survey_id: int, comment: Comment) -> None:
        await self.writer.save_comment(survey_id, comment)
        await self._committed()

    async def get_call(self, pbx: str, linkedid: str) -> CallRecord | None:
        return await self.reads.get_call(pbx, linkedid)

    async def get_survey(self, pbx: str, linkedid: str) -> StoredSurvey | None:
        return await self.reads.get_survey(pbx, linkedid)

    async def calls_started_before(self, pbx: str, moment: datetime) -> int:
        return await self.reads.calls_started_before(pbx, moment)


@contextlib.asynccontextmanager
async def committed_writes(engine: AsyncEngine) -> AsyncIterator[CommittedWrites]:
    """A running `CommittedWrites` on `engine`, its spool in a directory of its own."""
    with tempfile.TemporaryDirectory(prefix="test-writes-") as directory:
        writes = CommittedWrites(engine, Path(directory) / "spool.jsonl")
        await writes.writer.start()
        try:
            yield writes
        finally:
            await writes.writer.close()


@contextlib.asynccontextmanager
async def committed_writes_on(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[CommittedWrites]:
    """`committed_writes` on the engine a session factory is bound to."""
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    async with committed_writes(engine) as writes:
        yield writes
