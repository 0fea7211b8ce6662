"""Group commit: many sessions' writes in one transaction, and a spool when the
database is down.

With one transaction per keypress, 1000 surveys at once means 1000 commits
competing for SQLite's single writer (or PostgreSQL's connection pool) and
every caller waiting in that queue for the next prompt. Here every write goes
into one queue; one task takes whatever has accumulated while the previous
transaction ran (up to `batch_size`) and writes it in one transaction, answers
of consecutive requests as one executemany. Under load, batches grow by
themselves; when quiet, a lone write goes out at once.

Callers wait only for what they need: `begin_survey` for its id (or None when
the call was surveyed already); answers, finished statuses and calls are
queued and return at once, in order per survey since the queue is FIFO.

A batch that fails on bad data (a constraint, an unknown survey) is retried
one write per transaction, so only the bad write is lost, logged with its
Linkedid. A batch that fails because the database cannot be reached goes to
the durable spool (`storage.spool`), as does everything after it, until a
probe (with backoff) finds the database back: then the spool is replayed in
order, removed, and writing resumes. A database that answers but cannot take
writes (read-only after a failover, out of connections or disk, shutting
down, a serialization conflict) is an outage too; the probe is a write (an
empty UPDATE), made on fresh connections, because a connection opened while
the database was read-only stays read-only. When the spool cannot take the
writes either (the disk both live on is full), they are held in memory, up to
`max_held`, with an ERROR a minute, and go to whichever of the two has room
first, in order after what the spool already holds. While the database is down,
`begin_survey` cannot check whether the call was surveyed already: it returns
a provisional (negative) id and the survey runs; the replay settles it against
(pbx, linkedid), and the answers of a survey that turns out to be a repeat are
not counted twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.core.domain import Answer, CallRecord, Comment, SurveyStart, SurveyStatus
from storage import grouped_writes, upserts
from storage.database import describe_error
from storage.spool import Spool, SpoolError
from storage.write_requests import (
    BeginSurvey,
    FinishSurvey,
    Flush,
    RecordDecision,
    Request,
    SaveAnswer,
    SaveCall,
    SaveComment,
    Write,
    decode,
    encode,
)

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_PENDING = 50_000
# Writes kept in memory when neither the database nor the spool takes them:
# about 4,000 surveys' worth, a few tens of MB.
DEFAULT_MAX_HELD = 20_000
HELD_ALARM_SECONDS = 60.0
# A write that needs the database to take writes, and changes nothing.
_WRITE_PROBE = sa.text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0")
# Other writes that may share a batch with survey starts. A start moves ahead of
# writes queued before it; none of them can be its own survey's (those wait for
# its id), and the call's final save always comes after its survey started.
STARTS_COMPANIONS = 50
PROBE_MIN_SECONDS = 0.5
PROBE_MAX_SECONDS = 30.0

# What asyncpg raises for a connection lost or refused, when SQLAlchemy passes
# it through unwrapped (it happens on connect).
_CONNECTION_ERROR_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "InterfaceError",
        "InternalClientError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
)


# PostgreSQL's SQLSTATEs for "not now": the server is up but cannot take
# this write at the moment, and the same write will succeed later. Whole classes
# by their two-character prefix, single conditions by their full code.
_NOT_NOW_CLASSES = frozenset(
    {
        "08",  # connection exception
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "57",  # operator intervention: admin or crash shutdown, cannot connect now, canceled
        "58",  # system error: an I/O error on the server
    }
)
_NOT_NOW_STATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a standby, or default_transaction_read_only
        "40001",  # serialization_failure: retried later, in the same order
        "40P01",  # deadlock_detected
        "40003",  # statement_completion_unknown
        "55P03",  # lock_not_available
        "25P03",  # idle_in_transaction_session_timeout
    }
)


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE the driver reported (asyncpg's adapter calls it both names)."""
    for name in ("sqlstate", "pgcode"):
        state = getattr(error, name, None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def cannot_write_now(error: BaseException) -> bool:
    """True when the server answered but cannot take writes at the moment."""
    state = _sqlstate(error)
    return state is not None and (state in _NOT_NOW_STATES or state[:2] in _NOT_NOW_CLASSES)


def is_unreachable(error: BaseException) -> bool:
    """True when the database cannot take writes now (refused, reset, timed
    out, shut down, read-only, out of connections or disk, a serialization
    conflict), as opposed to refusing this write (a constraint, a type): the
    first is an outage to ride out with the spool, the second a bug to log.
    """
    if isinstance(error, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.DataError):
        return False
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        return error.orig is not None and is_unreachable(error.orig)
    if cannot_write_now(error):
        return True
    if isinstance(error, sqlalchemy.exc.StatementError):
        return False  # a value refused before it reached the database
    if isinstance(error, OSError | TimeoutError | sqlalchemy.exc.TimeoutError):
        return True
    if type(error).__name__ in _CONNECTION_ERROR_NAMES:
        return True
    cause = error.__cause__
    return cause is not None and cause is not error and is_unreachable(cause)


class GroupCommitWriter:
    """`ivr.ports.SurveyRepository` that batches writes and spools them in outages.

    The only code that writes survey rows. `observe` hears each committed
    batch's duration (the metrics); `refused` hears each write the database
    refused, after it is logged, for a caller that must know (the tests' writes).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        spool: Spool,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        linger: float = 0.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_held: int = DEFAULT_MAX_HELD,
        probe_min: float = PROBE_MIN_SECONDS,
        probe_max: float = PROBE_MAX_SECONDS,
        observe: Callable[[float], None] | None = None,
        refused: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._engine = engine
        self._spool = spool
        self._batch_size = batch_size
        self._linger = linger
        self._max_pending = max_pending
        self._max_held = max_held
        # Writes neither the database nor the spool took, oldest first; all of
        # them come after whatever the spool holds.
        self._held: collections.deque[Write] = collections.deque()
        self._held_alarm_at = float("-inf")
        self._lost_alarm_at = float("-inf")
        self._probe_min = probe_min
        self._probe_max = probe_max
        self._observe = observe
        self._refused = refused
        self._queue: collections.deque[Request] = collections.deque()
        # Survey starts are the only writes a caller waits on (the first
        # question waits for the survey row), so each batch takes them first.
        self._starts: collections.deque[BeginSurvey] = collections.deque()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._down = False
        self._probe_delay = probe_min
        self._next_probe = 0.0
        # Provisional ids are negative and unique across restarts, since a
        # spool may outlive the process that wrote it.
        self._next_provisional = -(time.time_ns() // 1000)
        self._provisional: dict[int, int | None] = {}
        self._linkedids: dict[int, str] = {}
        self._started = datetime.now(UTC)
        # Set until the surveys a dead process left open are marked (the
        # database may be down at start).
        self._interrupted_pending = True
        self.failed = 0
        self.lost = 0
        self.batches = 0
        self.written = 0

    # --- SurveyRepository ---------------------------------------------------------

    async def save_call(self, call: CallRecord) -> None:
        await self._put(SaveCall(call))

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        upserts.check_start(call, start)
        reply: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        await self._put(BeginSurvey(call, start, reply))
        return await reply

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        await self._put(SaveAnswer(survey_id, answer, self._linkedids.get(survey_id, "-")))

    async def record_decision(self, call: CallRecord, decision: str) -> None:
        """The survey policy's decision on the call (ivr/adapters/fastagi/screening.py)."""
        await self._put(RecordDecision(call, decision))

    async def save_comment(self, survey_id: int, comment: Comment) -> None:
        await self._put(SaveComment(survey_id, comment, self._linkedids.get(survey_id, "-")))

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        linkedid = self._linkedids.get(survey_id, "-")
        await self._put(FinishSurvey(survey_id, status, finished_at, linkedid))

    # --- Life cycle and state -----------------------------------------------------

    @property
    def spool_depth(self) -> int:
        """Writes waiting in the spool for the database to come back."""
        return self._spool.depth

    @property
    def down(self) -> bool:
        """True while writes go to the spool."""
        return self._down

    @property
    def held(self) -> int:
        """Writes kept in memory because neither the database nor the spool took them."""
        return len(self._held)

    @property
    def pending(self) -> int:
        """Writes queued in memory, not yet committed nor spooled."""
        return len(self._queue)

    async def start(self) -> None:
        """Replay what an earlier run spooled, mark the surveys an earlier run
        left open, then start writing."""
        if self._spool.depth:
            log.warning(
                "replaying %d writes spooled while the database was unreachable (%s)",
                self._spool.depth,
                self._spool.path,
            )
            await self._recover(probe=False)
            # No session of this process can refer to a survey spooled by an
            # earlier one.
            self._provisional.clear()
        if self._interrupted_pending and not self._down:
            await self._mark_interrupted()
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def _mark_interrupted(self) -> None:
        """A survey still open now was running in a process that died."""
        try:
            async with self._engine.begin() as connection:
                linkedids = await upserts.mark_interrupted(connection, self._started)
        except Exception as error:
            if not is_unreachable(error):
                raise
            self._go_down(error)
            return
        self._interrupted_pending = False
        if linkedids:
            shown = ", ".join(linkedids[:10]) + (", ..." if len(linkedids) > 10 else "")
            log.warning(
                "%d surveys were left open when the service last stopped (Linkedid=%s): "
                "marked interrupted; their answers are kept",
                len(linkedids),
                shown,
            )

    async def flush(self) -> None:
        """Return once everything queued so far is committed or spooled."""
        request = Flush()
        await self._put(request)
        await request.done

    async def close(self) -> None:
        """Write (or spool) everything queued, then stop."""
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._held:
            await self._recover(probe=True)
        if self._held and not self._held_to_spool():
            log.error(
                "%d writes held in memory are lost at shutdown: neither the database nor "
                "the spool %s could take them (first Linkedid=%s)",
                len(self._held),
                self._spool.path,
                self._held[0].linkedid,
            )
            self.lost += len(self._held)
            self._held.clear()
        self._spool.close()

    async def _put(self, request: Request) -> None:
        """Queue a request; wait only while the queue is full (the database is slow)."""
        if self._task is None:
            raise RuntimeError("the group-commit writer is not running: start() it first")
        while len(self._queue) + len(self._starts) >= self._max_pending:
            self._room.clear()
            await self._room.wait()
        if isinstance(request, BeginSurvey):
            self._starts.append(request)
        else:
            self._queue.append(request)
        self._wakeup.set()

    # --- The writing task ---------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if self._down and loop.time() >= self._next_probe:
                try:
                    await self._recover(probe=True)
                except Exception as error:
                    log.exception("the spool %s could not be written back", self._spool.path)
                    self._go_down(error)
            writes = [request for request in batch if not isinstance(request, Flush)]
            try:
                if self._down:
                    self._to_spool(writes)
                elif writes:
                    await self._write(writes)
            except Exception as error:
                log.exception("the writer failed on a batch of %d writes", len(writes))
                for write in writes:
                    self._fail(write, error)
            for request in batch:
                if isinstance(request, Flush) and not request.done.done():
                    request.done.set_result(None)

    async def _next_batch(self) -> list[Request]:
        """What accumulated while the last batch was written (empty on a probe's turn)."""
        loop = asyncio.get_running_loop()
        while not self._queue and not self._starts:
            self._wakeup.clear()
            timeout = max(0.0, self._next_probe - loop.time()) if self._down else None
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return []
        # One turn of the loop lets the sessions that are ready add their writes.
        await asyncio.sleep(self._linger)
        starts = min(len(self._starts), self._batch_size)
        batch: list[Request] = [self._starts.popleft() for _ in range(starts)]
        room = self._batch_size - starts
        if starts:
            # Callers are waiting on this batch: keep it short.
            room = min(room, STARTS_COMPANIONS)
        batch += [self._queue.popleft() for _ in range(min(len(self._queue), room))]
        if len(self._queue) + len(self._starts) < self._max_pending:
            self._room.set()
        return batch

    async def _write(self, writes: list[Write]) -> None:
        started = time.perf_counter()
        try:
            async with self._engine.begin() as connection:
                outcomes = await self._apply(connection, writes, replaying=False)
        except Exception as error:
            if is_unreachable(error):
                self._go_down(error)
                self._to_spool(writes)
                return
            log.warning(
                "a batch of %d writes failed (%s); writing them one by one",
                len(writes),
                describe_error(error),
            )
            await self._one_by_one(writes, replaying=False)
            return
        if self._observe is not None:
            self._observe(time.perf_counter() - started)
        self._settle(writes, outcomes)

    async def _one_by_one(self, writes: Sequence[Write], *, replaying: bool) -> bool:
        """Each write in its own transaction, so one bad write loses only itself.

        Returns False when the database became unreachable on the way (the
        rest is spooled, or stays in the spool when replaying).
        """
        for index, write in enumerate(writes):
            try:
                async with self._engine.begin() as connection:
                    outcomes = await self._apply(connection, [write], replaying=replaying)
            except Exception as error:
                if is_unreachable(error):
                    self._go_down(error)
                    if not replaying:
                        self._to_spool(writes[index:])
                    return False
                self._fail(write, error)
                if replaying:
                    # Logged by _fail already; on a full disk the copy aside may not fit.
                    with contextlib.suppress(OSError):
                        self._spool.reject([_line(write)])
                continue
            self._settle([write], outcomes)
        return True

    async def _apply(
        self, connection: AsyncConnection, writes: Sequence[Write], *, replaying: bool
    ) -> dict[int, int | None]:
        """Run the writes in order in one transaction, a few statements for the
        lot (`storage.grouped_writes`); return each begin's survey id, by the
        begin's position in `writes`."""
        return await grouped_writes.apply(
            connection, writes, replaying=replaying, real_id=self._real_id
        )

    def _real_id(self, survey_id: int, fresh: dict[int, int | None]) -> int | None:
        """The database id of a survey; None for a repeat survey that is not stored."""
        if survey_id > 0:
            return survey_id
        if survey_id in fresh:
            return fresh[survey_id]
        if survey_id in self._provisional:
            return self._provisional[survey_id]
        raise LookupError(f"no survey with provisional id {survey_id}")

    def _settle(self, writes: Sequence[Write], outcomes: dict[int, int | None]) -> None:
        """After the commit: answer the waiting callers, remember surveys' Linkedids."""
        self.batches += 1
        self.written += len(writes)
        for index, write in enumerate(writes):
            if isinstance(write, BeginSurvey):
                survey_id = outcomes[index]
                if write.provisional is not None:
                    self._provisional[write.provisional] = survey_id
                    if survey_id is None:
                        log.warning(
                            "Linkedid=%s: the survey taken while the database was down "
                            "was a repeat of one already stored; its answers are not "
                            "counted twice",
                            write.linkedid,
                        )
                elif survey_id is not None:
                    self._linkedids[survey_id] = write.linkedid
                if write.reply is not None and not write.reply.done():
                    write.reply.set_result(survey_id)
            elif isinstance(write, FinishSurvey):
                self._linkedids.pop(write.survey_id, None)
                self._provisional.pop(write.survey_id, None)

    def _fail(self, write: Write, error: BaseException) -> None:
        """A write the database refused: a bug to hear about, with its Linkedid."""
        self.failed += 1
        log.error(
            "Linkedid=%s: %s could not be stored: %s",
            write.linkedid,
            _describe(write),
            describe_error(error),
        )
        if self._refused is not None:
            self._refused(error)
        if isinstance(write, BeginSurvey) and write.reply is not None and not write.reply.done():
            write.reply.set_exception(error)
        elif isinstance(write, FinishSurvey):
            self._linkedids.pop(write.survey_id, None)

    # --- Outage: spool, probe, replay ---------------------------------------------

    def _go_down(self, error: BaseException) -> None:
        if not self._down:
            log.error(
                "database unreachable (%s): writes go to the spool %s until it is back",
                describe_error(error),
                self._spool.path,
            )
        self._down = True
        self._next_probe = asyncio.get_running_loop().time() + self._probe_delay
        self._probe_delay = min(self._probe_delay * 2, self._probe_max)

    def _to_spool(self, writes: Sequence[Write]) -> None:
        """Append to the spool (fsync'd), or hold in memory when it cannot take
        them; a new survey gets a provisional id."""
        if not writes:
            return
        for write in writes:
            if isinstance(write, BeginSurvey) and write.provisional is None:
                write.provisional = self._next_provisional
                self._next_provisional -= 1
        if self._held or not self._append_to_spool(writes):
            writes = self._hold(writes)
        for write in writes:
            if isinstance(write, BeginSurvey):
                assert write.provisional is not None
                self._linkedids[write.provisional] = write.linkedid
                if write.reply is not None and not write.reply.done():
                    write.reply.set_result(write.provisional)

    def _append_to_spool(self, writes: Sequence[Write]) -> bool:
        try:
            self._spool.append(encode(write) for write in writes)
        except (OSError, SpoolError) as error:
            self._alarm_held(error)
            return False
        return True

    def _hold(self, writes: Sequence[Write]) -> list[Write]:
        """Keep what fits in memory; what does not is lost, and said so. Returns the kept."""
        room = max(0, self._max_held - len(self._held))
        kept, lost = list(writes[:room]), writes[room:]
        self._held.extend(kept)
        if lost:
            self.lost += len(lost)
            error = RuntimeError(
                f"neither the database, the spool nor memory ({self._max_held} writes, "
                "[database] max_held_writes) could hold it"
            )
            now = time.monotonic()
            if now - self._lost_alarm_at >= HELD_ALARM_SECONDS:
                self._lost_alarm_at = now
                log.error(
                    "Linkedid=%s: %d writes lost (%d in all since start-up): %s",
                    lost[0].linkedid,
                    len(lost),
                    self.lost,
                    error,
                )
            for write in lost:
                reply = write.reply if isinstance(write, BeginSurvey) else None
                if reply is not None and not reply.done():
                    reply.set_exception(error)
        return kept

    def _alarm_held(self, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._held_alarm_at < HELD_ALARM_SECONDS:
            return
        self._held_alarm_at = now
        log.error(
            "neither the database nor the spool %s can take writes (%s): %d writes held in "
            "memory (at most %d); they are written to whichever has room first",
            self._spool.path,
            describe_error(error),
            len(self._held),
            self._max_held,
        )

    def _held_to_spool(self) -> bool:
        """Move the held writes to the spool, if it has room again."""
        if not self._held:
            return True
        if not self._append_to_spool(self._held):
            return False
        log.warning("the spool took the %d writes held in memory", len(self._held))
        self._held.clear()
        return True

    async def _takes_writes(self) -> bool:
        """On fresh connections: the ones pooled during the outage may be stuck
        read-only (SQLite keeps a file opened read-only that way)."""
        await self._engine.dispose()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(_WRITE_PROBE)
        except Exception as error:
            self._go_down(error)
            return False
        return True

    async def _recover(self, *, probe: bool) -> None:
        """Probe the database; when it takes writes, replay the spool, then
        what is held in memory, and resume."""
        if probe:
            self._held_to_spool()
            if not await self._takes_writes():
                return
        writes = self._spool.read(decode)
        for start in range(0, len(writes), self._batch_size):
            if not await self._replay(writes[start : start + self._batch_size]):
                return
        self._spool.clear()
        held = len(self._held)
        if not await self._replay_held():
            return
        if self._interrupted_pending:
            await self._mark_interrupted()
            if self._down:
                return
        if self._down or writes or held:
            log.warning(
                "database reachable again: %d spooled and %d held writes replayed",
                len(writes),
                held,
            )
        self._down = False
        self._probe_delay = self._probe_min

    async def _replay_held(self) -> bool:
        """Write what memory holds, oldest first; False if the database went away
        again (what was written stays held too: replaying it again stores nothing twice)."""
        while self._held:
            chunk = [self._held[index] for index in range(min(len(self._held), self._batch_size))]
            if not await self._replay(chunk):
                return False
            for _ in chunk:
                self._held.popleft()
        return True

    async def _replay(self, chunk: Sequence[Write]) -> bool:
        """One transaction for a chunk written while the database was down, or one
        per write when it holds a bad one; False if the database went away again."""
        try:
            async with self._engine.begin() as connection:
                outcomes = await self._apply(connection, chunk, replaying=True)
        except Exception as error:
            if is_unreachable(error):
                self._go_down(error)
                return False
            return await self._one_by_one(chunk, replaying=True)
        self._settle(chunk, outcomes)
        return True


def _describe(write: Write) -> str:
    if isinstance(write, SaveCall):
        return "the call"
    if isinstance(write, BeginSurvey):
        return "the survey start"
    if isinstance(write, SaveAnswer):
        answer = write.answer
        return f"the {answer.question!r} answer ({answer.value}) of survey {write.survey_id}"
    if isinstance(write, RecordDecision):
        return f"the policy decision {write.decision!r}"
    if isinstance(write, SaveComment):
        return f"the recorded comment {write.comment.file!r} of survey {write.survey_id}"
    return f"the status {write.status.value} of survey {write.survey_id}"


def _line(write: Write) -> str:
    return json.dumps(encode(write), separators=(",", ":"))
