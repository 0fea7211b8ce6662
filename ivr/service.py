"""The composition root: the one place that builds and wires every part.

It owns start-up and shutdown order (database checked before anything
listens; FastAGI stopped before the database closes, so no answer is cut off)
and the two queues that keep the AMI path fast: events are applied by one
consumer task in arrival order, and finished calls are written by one writer
task, so a slow database never blocks the socket Asterisk writes events to
(Asterisk drops a manager session whose writes block for 100 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.agi import NpsRoute
from ivr.ami import AmiClient
from ivr.background import Background
from ivr.calls import CallTracker
from ivr.config import Config
from ivr.domain import AmiEvent, Answer, CallRecord, Comment, SurveyStart, SurveyStatus
from ivr.fastagi import AgiChannel, FastAgiServer, Route
from ivr.ports import LatencySnapshot
from ivr.prompts import prompt_checker
from ivr.survey_plan import SurveyPlanner
from ivr.web import DetractorAlerts, LatencyHistogram, WebServer
from storage.analytics import SqlReportReader
from storage.database import check_migrated, create_engine, session_factory
from storage.recordings import SqlRecordings
from storage.repository import SqlSurveyRepository

log = logging.getLogger(__name__)

# How often finished calls are evicted from memory (in applied events).
EVICT_EVERY_EVENTS = 1000
# How many queued AMI events are applied before FastAGI sessions get a turn.
YIELD_EVERY_EVENTS = 32


@dataclass
class Counters:
    events: int = 0
    event_errors: int = 0
    calls_saved: int = 0
    call_save_errors: int = 0


class TimedRepository:
    """The repository, with each write's duration fed to the /metrics histogram."""

    def __init__(self, inner: SqlSurveyRepository, histogram: LatencyHistogram) -> None:
        self._inner = inner
        self._histogram = histogram

    async def save_call(self, call: CallRecord) -> None:
        started = time.perf_counter()
        try:
            await self._inner.save_call(call)
        finally:
            self._histogram.observe(time.perf_counter() - started)

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        started = time.perf_counter()
        try:
            return await self._inner.begin_survey(call, start)
        finally:
            self._histogram.observe(time.perf_counter() - started)

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        started = time.perf_counter()
        try:
            await self._inner.save_answer(survey_id, answer)
        finally:
            self._histogram.observe(time.perf_counter() - started)

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        started = time.perf_counter()
        try:
            await self._inner.finish_survey(survey_id, status, finished_at)
        finally:
            self._histogram.observe(time.perf_counter() - started)

    async def save_comment(self, survey_id: int, comment: Comment) -> None:
        started = time.perf_counter()
        try:
            await self._inner.save_comment(survey_id, comment)
        finally:
            self._histogram.observe(time.perf_counter() - started)


class Service:
    """Builds everything; also the metrics source and survey observer it hands out."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.counters = Counters()
        self.tracker = CallTracker(
            config.ami.name, retention_seconds=config.tracking.retention_seconds
        )
        self._events: asyncio.Queue[AmiEvent] = asyncio.Queue()
        self._finished_calls: asyncio.Queue[CallRecord] = asyncio.Queue()
        self._engine: AsyncEngine | None = None
        self.repository: SqlSurveyRepository | None = None
        self.ami: AmiClient | None = None
        self.agi: FastAgiServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.background = Background()
        self.web: WebServer | None = None
        self.alerts: DetractorAlerts | None = None
        self._write_latency = LatencyHistogram()
        self._finished_surveys: Counter[str] = Counter()

    async def start(self) -> None:
        """Check the database, then start AMI tracking and the FastAGI server."""
        self._engine = create_engine(self.config.database.url)
        try:
            await check_migrated(self._engine)
        except BaseException:
            await self._engine.dispose()
            self._engine = None
            raise
        sessions = session_factory(self._engine)
        self.repository = SqlSurveyRepository(sessions)
        self.alerts = DetractorAlerts(self.config.alerts, dashboard_url=self.config.web.base_url())
        await self.alerts.start()
        route = NpsRoute(
            pbx=self.config.ami.name,
            planner=SurveyPlanner(self.config),
            prompt_exists=(
                prompt_checker(Path(self.config.survey.sounds_dir))
                if self.config.survey.sounds_dir
                else None
            ),
            calls=self.tracker.get,
            repository=TimedRepository(self.repository, self._write_latency),
            background=self.background,
            observer=self,
        )
        self.agi = FastAgiServer(
            self._route(route),
            host=self.config.agi.host,
            port=self.config.agi.port,
            header_timeout=self.config.agi.header_timeout,
            command_timeout=self.config.agi.command_timeout,
        )
        self.ami = AmiClient(self.config.ami, self._events.put_nowait, on_login=self._resync)
        self._tasks = [
            asyncio.create_task(self._consume_events(), name="ami-events"),
            asyncio.create_task(self._write_calls(), name="call-writer"),
            asyncio.create_task(self.ami.run(), name="ami-session"),
        ]
        await self.agi.start()
        self.web = WebServer(
            self.config.web,
            SqlReportReader(sessions),
            self,
            alerts=self.alerts,
            recordings=SqlRecordings(sessions, self.config.survey.recordings_dir),
        )
        await self.web.start()

    @property
    def agi_port(self) -> int:
        assert self.agi is not None
        return self.agi.port

    def _route(self, route: NpsRoute) -> Route:
        async def serve(channel: AgiChannel) -> None:
            if channel.request.script != "nps":
                log.warning(
                    "FastAGI %s: unknown route %r (this service serves agi://HOST:PORT/nps)",
                    channel.request.channel,
                    channel.request.get("agi_network_script"),
                )
                return
            await route(channel)

        return serve

    async def stop(self, grace: float = 5.0) -> None:
        """Let open surveys finish (up to `grace`), then flush and close everything."""
        if self.agi is not None:
            await self.agi.stop(grace)
        unfinished = await self.background.drain(grace)
        if unfinished:
            log.error("%d survey writes did not finish before shutdown", unfinished)
        if self.web is not None:
            await self.web.stop()
        if self.alerts is not None:
            await self.alerts.stop(grace)
        if self.ami is not None:
            await self.ami.logoff()
        ami_task = next((t for t in self._tasks if t.get_name() == "ami-session"), None)
        if ami_task is not None:
            ami_task.cancel()
        await self._drain_queues(grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # --- ServiceMetrics (for /metrics) and SurveyObserver (for the AGI route) ---

    def ami_connected(self) -> bool:
        return self.ami is not None and self.ami.connected

    def calls_tracked(self) -> int:
        return self.tracker.tracked_count

    def surveys_by_status(self) -> Mapping[str, int]:
        return dict(self._finished_surveys)

    def agi_sessions_open(self) -> int:
        return self.agi.open_sessions if self.agi is not None else 0

    def db_write_latency(self) -> LatencySnapshot:
        return self._write_latency.snapshot()

    def survey_finished(
        self,
        call: CallRecord,
        survey_id: int,
        status: SurveyStatus,
        answers: Sequence[Answer],
    ) -> None:
        self._finished_surveys[status.value] += 1
        if self.alerts is not None:
            self.alerts.survey_finished(call, survey_id, status, answers)

    async def _drain_queues(self, grace: float) -> None:
        """Apply queued events and write finished calls before closing the database."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events.join(), grace)
            await asyncio.wait_for(self._finished_calls.join(), grace)

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
            applied += 1
            if applied % YIELD_EVERY_EVENTS == 0:
                await asyncio.sleep(0)

    def _apply(self, event: AmiEvent) -> None:
        self.counters.events += 1
        try:
            finished = self.tracker.feed(event)
        except Exception:
            self.counters.event_errors += 1
            log.exception(
                "AMI %s: event %s could not be tracked (Linkedid=%s)",
                event.pbx,
                event.name or "?",
                event.linkedid or "-",
            )
            return
        for call in finished:
            self._finished_calls.put_nowait(call)
        if self.counters.events % EVICT_EVERY_EVENTS == 0:
            now = self._clock()
            for call in self.tracker.expire_stale(now):
                self._finished_calls.put_nowait(call)
            self.tracker.evict(now)

    async def _write_calls(self) -> None:
        assert self.repository is not None
        while True:
            call = await self._finished_calls.get()
            try:
                await self.repository.save_call(call)
                self.counters.calls_saved += 1
            except Exception:
                self.counters.call_save_errors += 1
                log.exception("Linkedid=%s: could not store the finished call", call.linkedid)
            finally:
                self._finished_calls.task_done()
