"""One Asterisk as the service follows it: its AMI session, its calls, its two queues.

A service follows one or several PBXs; each gets a `PbxLink`, so a slow or
lost PBX never holds up another. Events of one PBX are applied by one
consumer task in arrival order, and its finished calls are written by one
writer task, so a slow database never blocks the socket Asterisk writes
events to (Asterisk drops a manager session whose writes block for 100 ms).
After every login the link resyncs its tracker (QueueStatus, then
CoreShowChannels or BridgeList/BridgeInfo): calls that ended while AMI was
down are then closed and stored by the tracker, not left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ivr.adapters.ami.client import AmiClient
from ivr.adapters.background import cancel_all
from ivr.adapters.guard import RateLimitedWarnings, since_last
from ivr.config.pbx import PbxConfig
from ivr.core.calls import CallTracker
from ivr.core.domain import AmiEvent, CallRecord

log = logging.getLogger(__name__)

# How often finished calls are evicted from memory (in applied events).
EVICT_EVERY_EVENTS = 1000
# How many queued AMI events are applied before FastAGI sessions get a turn.
YIELD_EVERY_EVENTS = 32

CallWriter = Callable[[CallRecord], Awaitable[None]]


@dataclass
class Counters:
    """Service-wide totals; every link adds to the same one."""

    events: int = 0
    event_errors: int = 0
    events_refused: int = 0
    reading_paused: int = 0
    calls_saved: int = 0
    call_save_errors: int = 0


class PbxLink:
    """The AMI session, call tracker, event consumer and call writer of one PBX."""

    def __init__(
        self,
        pbx: PbxConfig,
        *,
        retention_seconds: float,
        counters: Counters,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = pbx
        self.tracker = CallTracker(
            pbx.name, retention_seconds=retention_seconds, max_calls=pbx.ami.max_tracked_calls
        )
        self._max_queued = pbx.ami.max_queued_events
        self._paused = False
        self.ami: AmiClient | None = None
        self._counters = counters
        self._clock = clock
        self._warnings = RateLimitedWarnings(time.monotonic)
        self._events: asyncio.Queue[AmiEvent] = asyncio.Queue()
        self._finished_calls: asyncio.Queue[CallRecord] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ami_task: asyncio.Task[None] | None = None
        self._applied = 0

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def queued_events(self) -> int:
        """Events received and not yet applied by the tracker."""
        return self._events.qsize()

    @property
    def connected(self) -> bool:
        return self.ami is not None and self.ami.connected

    def start(self, write_call: CallWriter) -> None:
        """Start the AMI session and the tasks that apply its events and write its calls."""
        self.ami = AmiClient(self.config.ami, self._queue_event, on_login=self._resync)
        self._ami_task = asyncio.create_task(self.ami.run(), name=f"ami-session {self.name}")
        self._tasks = [
            asyncio.create_task(self._consume_events(), name=f"ami-events {self.name}"),
            asyncio.create_task(self._write_calls(write_call), name=f"call-writer {self.name}"),
            self._ami_task,
        ]

    async def stop(self, grace: float) -> None:
        """Log off, then apply what is queued and write the finished calls (up to `grace`)."""
        if self.ami is not None:
            await self.ami.logoff()
        if self._ami_task is not None:
            self._ami_task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events.join(), grace)
            await asyncio.wait_for(self._finished_calls.join(), grace)
        await cancel_all(self._tasks)
        self._ami_task = None

    def _queue_event(self, event: AmiEvent) -> None:
        """Queue an event for the tracker; past [ami] max_queued_events, stop
        reading the connection until the tracker has caught up to half of it.

        Nothing is dropped: Asterisk keeps what it has not sent in its own
        queue for this session, and TCP tells it to wait (it drops a manager
        session that stays blocked past its own write timeout, and the resync
        after the reconnect finds the calls in progress again).
        """
        self._events.put_nowait(event)
        if not self._paused and self._events.qsize() >= self._max_queued:
            assert self.ami is not None
            self._paused = self.ami.pause_reading()
            if self._paused:
                self._counters.reading_paused += 1
                suppressed = self._warnings.due("paused")
                if suppressed is not None:
                    log.warning(
                        "AMI %s: %d events wait for the tracker ([ami] max_queued_events): "
                        "reading paused until half of them are applied%s",
                        self.name,
                        self._events.qsize(),
                        since_last(suppressed),
                    )

    async def _resync(self) -> None:
        assert self.ami is not None
        for event in await self.ami.resync():
            self._events.put_nowait(event)

    async def _consume_events(self) -> None:
        """Apply events in arrival order, yielding to the callers' sessions regularly.

        `Queue.get()` does not suspend while events are waiting, so a burst of
        thousands would otherwise hold the loop and every caller would hear the
        gap (bench/agi_concurrency.py measured p99 turnarounds over a second).
        """
        applied = 0
        while True:
            event = await self._events.get()
            try:
                self._apply(event)
            finally:
                self._events.task_done()
            if self._paused and self._events.qsize() <= self._max_queued // 2:
                self._paused = False
                if self.ami is not None:
                    self.ami.resume_reading()
            applied += 1
            if applied % YIELD_EVERY_EVENTS == 0:
                await asyncio.sleep(0)

    def _apply(self, event: AmiEvent) -> None:
        self._counters.events += 1
        self._applied += 1
        refused = self.tracker.refused_events
        try:
            finished = self.tracker.feed(event)
        except Exception:
            self._counters.event_errors += 1
            suppressed = self._warnings.due("event-error")
            if suppressed is not None:
                log.exception(
                    "AMI %s: event %s could not be tracked (Linkedid=%s)%s",
                    event.pbx,
                    event.name or "?",
                    event.linkedid or "-",
                    since_last(suppressed),
                )
            return
        if self.tracker.refused_events > refused:
            self._counters.events_refused += 1
            suppressed = self._warnings.due("event-refused")
            if suppressed is not None:
                log.warning(
                    "AMI %s: ignored %s (Linkedid=%s): no call is started from it%s",
                    event.pbx,
                    self.tracker.last_refusal,
                    event.linkedid or "-",
                    since_last(suppressed),
                )
        for call in finished:
            self._finished_calls.put_nowait(call)
        if self._applied % EVICT_EVERY_EVENTS == 0:
            now = self._clock()
            for call in self.tracker.expire_stale(now):
                self._finished_calls.put_nowait(call)
            self.tracker.evict(now)

    async def _write_calls(self, write_call: CallWriter) -> None:
        while True:
            call = await self._finished_calls.get()
            try:
                await write_call(call)
                self._counters.calls_saved += 1
            except Exception:
                self._counters.call_save_errors += 1
                log.exception(
                    "%s Linkedid=%s: could not store the finished call", self.name, call.linkedid
                )
            finally:
                self._finished_calls.task_done()


def _since_last(suppressed: int) -> str:
    return since_last(suppressed)
