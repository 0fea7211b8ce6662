"""The composition root: the one place that builds and wires every part.

It owns start-up and shutdown order (database checked before anything
listens; FastAGI stopped before the database closes, so no answer is cut off).
Each followed Asterisk is a `PbxLink` (ivr/adapters/ami/pbx_link.py: its AMI session,
call tracker and the two queues that keep the AMI path fast), held by name;
FastAGI requests go to the route of the PBX they come from (ivr/adapters/fastagi/attribution.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.adapters.ami.client import AmiClient
from ivr.adapters.ami.pbx_link import Counters, PbxLink
from ivr.adapters.background import Background, cancel_all
from ivr.adapters.fastagi.attribution import PbxRouter
from ivr.adapters.fastagi.route import NpsRoute
from ivr.adapters.fastagi.screening import RememberedOptOuts, Screening
from ivr.adapters.fastagi.server import AgiChannel, Drained, FastAgiServer, Route
from ivr.adapters.guard import RateLimitedWarnings, SessionGuard, since_last
from ivr.adapters.web import DetractorAlerts, LatencyHistogram, WebServer
from ivr.admin.prompts import prompt_checker
from ivr.config.live import LiveSettings, ReloadReport, live_settings, reload_report
from ivr.config.settings import Config, configured_pbxs
from ivr.core.calls import CallTracker
from ivr.core.domain import Answer, CallRecord, SurveyStatus
from ivr.ports import LatencySnapshot
from ivr.runtime import descriptors
from ivr.runtime.retention import purge_periodically
from storage.analytics import SqlReportReader
from storage.database import check_migrated, create_engine, session_factory
from storage.policy_store import SqlPolicyHistory, SqlPolicyStore, purge
from storage.recordings import SqlRecordings
from storage.revocations import SqlRevocations
from storage.spool import Spool, other_spools, spool_path
from storage.writer import GroupCommitWriter

log = logging.getLogger(__name__)

__all__ = ["Counters", "Service"]

# At stop, how long the writes and alerts left after the last survey may take.
FLUSH_SECONDS = 5.0
# Allocations between collections of the youngest generation (CPython: 700).
GC_YOUNG_THRESHOLD = 50_000
# How often the opt-out list used while the database is unreachable is re-read.
OPTOUT_REFRESH_SECONDS = 60.0
# Connections for the policy's history read, the one read a caller waits on: it
# takes a few milliseconds, so four serve hundreds of calls starting a second,
# and a burst queues for them rather than opening more backends.
HISTORY_READ_CONNECTIONS = 4


def _collect_garbage_less_often() -> None:
    """Keep the garbage collector from stalling every caller at once.

    With CPython's default threshold (a collection every 700 allocations) and
    a thousand calls tracked, collections of the older generations walk
    hundreds of thousands of live objects and stop the event loop for 50 to
    150 ms, which every caller hears as a gap (bench/agi_concurrency.py, 1000
    calls: p99 turnaround 50-1500 ms before, 23-32 ms after). Objects alive
    once the service has started are frozen out of collections altogether.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


class Service:
    """Builds everything; also the metrics source and survey observer it hands out."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._loaded = config
        self._live = live_settings(config)
        self._clock = clock
        self.counters = Counters()
        # Requests refused after their header (shared key, unknown call), by reason.
        self._agi_refused: Counter[str] = Counter()
        self.links: dict[str, PbxLink] = {
            pbx.name: PbxLink(
                pbx,
                retention_seconds=config.tracking.retention_seconds,
                counters=self.counters,
                clock=clock,
            )
            for pbx in configured_pbxs(config)
        }
        self._engine: AsyncEngine | None = None
        self._caller_engines: list[AsyncEngine] = []
        self.writer: GroupCommitWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.agi: FastAgiServer | None = None
        self.background = Background()
        self.web: WebServer | None = None
        self.alerts: DetractorAlerts | None = None
        self._write_latency = LatencyHistogram()
        self._finished_surveys: Counter[str] = Counter()
        self._privacy = config.privacy.privacy()
        self._optouts = RememberedOptOuts()

    async def start(self) -> None:
        """Check the database, then start AMI tracking and the FastAGI server.

        The parts are built (`_screening`, `_nps_routes`, `_fastagi_server`,
        `_web_server`) without IO, so only the awaited steps here can fail, in
        this order: nothing listens before the database is known to be migrated,
        and the writer runs before anything can hand it a write.
        """
        self._bound_descriptors()
        sessions, writer_engine, history_engine = await self._open_database()
        writer = await self._start_writer(writer_engine)
        self.alerts = DetractorAlerts(self.config.alerts, dashboard_url=self.config.web.base_url())
        await self.alerts.start()
        policy_store = SqlPolicyStore(sessions)
        await self._remember_optouts(policy_store)
        screening = self._screening(writer, SqlPolicyHistory(history_engine))
        self.agi = self._fastagi_server(self._nps_routes(writer, screening))
        self._start_tracking_and_timers(policy_store, sessions)
        await self.agi.start()
        self.web = self._web_server(sessions, self.alerts)
        await self.web.start()
        _collect_garbage_less_often()

    async def _open_database(
        self,
    ) -> tuple[async_sessionmaker[AsyncSession], AsyncEngine, AsyncEngine]:
        """Refuse to start on a database not migrated, before anything listens.

        What a caller waits on gets connections nothing else takes: the writer
        one of its own, the policy's history read a small pool. A dashboard
        query or a burst of reads then never holds up a survey's start.
        """
        url = self.config.database.url
        self._engine = create_engine(url)
        try:
            await check_migrated(self._engine)
        except BaseException:
            await self._engine.dispose()
            self._engine = None
            raise
        self._caller_engines = [
            create_engine(url, connections=1),
            create_engine(url, connections=HISTORY_READ_CONNECTIONS),
        ]
        writer_engine, history_engine = self._caller_engines
        return session_factory(self._engine), writer_engine, history_engine

    def _screening(self, writer: GroupCommitWriter, history: SqlPolicyHistory) -> Screening:
        """Shared by every PBX's route, so the calls already let through to a survey
        (and the remembered opt-outs) are kept in one place."""
        return Screening(
            rules=lambda: self._live.policy,
            privacy=self._privacy,
            remembered=self._optouts,
            history=history,
            recorder=writer,
            background=self.background,
            clock=self._now,
        )

    def _nps_routes(self, writer: GroupCommitWriter, screening: Screening) -> dict[str, NpsRoute]:
        """A route per PBX, so a survey reads the calls of the PBX it came from."""
        prompt_exists = (
            prompt_checker(Path(self.config.survey.sounds_dir))
            if self.config.survey.sounds_dir
            else None
        )
        return {
            name: NpsRoute(
                pbx=name,
                planner=lambda: self._live.planner,
                prompt_exists=prompt_exists,
                calls=link.tracker.get,
                repository=writer,
                background=self.background,
                screening=screening,
                observer=self,
                refuse_unknown=self._unknown_call_refusal(link),
            )
            for name, link in self.links.items()
        }

    def _fastagi_server(self, routes: Mapping[str, NpsRoute]) -> FastAgiServer:
        agi = self.config.agi
        router = PbxRouter(
            [link.config for link in self.links.values()],
            routes,
            shared_key=agi.shared_key,
            refused=self._agi_refused,
        )
        return FastAgiServer(
            self._route(router),
            host=agi.host,
            port=agi.port,
            header_timeout=agi.header_timeout,
            command_timeout=agi.command_timeout,
            max_unidentified=agi.max_unidentified,
            guard=SessionGuard(
                # A PBX's own agi_addresses are where its surveys come from:
                # listing them twice (allow-list and PBX) would only invite a mismatch.
                networks=(
                    *agi.allowed_networks(),
                    *(
                        network
                        for link in self.links.values()
                        for network in link.config.agi_addresses
                    ),
                ),
                max_sessions=agi.max_sessions,
            ),
        )

    def _start_tracking_and_timers(
        self, policy_store: SqlPolicyStore, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        """Tasks, not awaits: an Asterisk that is down is retried in the
        background and never holds up the start."""
        for link in self.links.values():
            link.start(self._save_finished_call)
        self._tasks.append(
            asyncio.create_task(self._refresh_optouts(policy_store), name="optout-refresh")
        )
        privacy = self.config.privacy
        if privacy.retention_days > 0:
            purging = purge_periodically(
                lambda before: purge(
                    sessions, before, recordings_dir=self.config.survey.recordings_dir
                ),
                retention_days=privacy.retention_days,
                interval_hours=privacy.purge_interval_hours,
                clock=self._now,
            )
            self._tasks.append(asyncio.create_task(purging, name="retention-purge"))

    def _web_server(
        self, sessions: async_sessionmaker[AsyncSession], alerts: DetractorAlerts
    ) -> WebServer:
        return WebServer(
            self.config.web,
            SqlReportReader(sessions, zone=self.config.reports.zone()),
            self,
            alerts=alerts,
            recordings=SqlRecordings(sessions, self.config.survey.recordings_dir),
            revocations=SqlRevocations(sessions),
        )

    async def _remember_optouts(self, store: SqlPolicyStore) -> None:
        entries = await store.optouts()
        self._optouts.remember((entry.caller_key for entry in entries), self._now())

    async def _refresh_optouts(self, store: SqlPolicyStore) -> None:
        """Keep the opt-outs the policy falls back on during an outage recent."""
        while True:
            await asyncio.sleep(OPTOUT_REFRESH_SECONDS)
            try:
                await self._remember_optouts(store)
            except Exception as error:
                log.warning("could not re-read the opt-out list (%s); keeping the last one", error)

    async def _save_finished_call(self, call: CallRecord) -> None:
        assert self.writer is not None
        await self.writer.save_call(self._privacy.protect(call))

    def _now(self) -> datetime:
        """The service clock as an aware datetime, for the policy and the purge."""
        return datetime.fromtimestamp(self._clock(), UTC)

    @property
    def tracker(self) -> CallTracker:
        """The call tracker of the first (with [ami] alone: the only) PBX."""
        return next(iter(self.links.values())).tracker

    @property
    def ami(self) -> AmiClient | None:
        """The AMI client of the first (with [ami] alone: the only) PBX, once started."""
        return next(iter(self.links.values())).ami

    @property
    def agi_port(self) -> int:
        assert self.agi is not None
        return self.agi.port

    def _route(self, route: Route) -> Route:
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

    @property
    def live(self) -> LiveSettings:
        """The settings a survey starting now runs with."""
        return self._live

    def reload(self, config: Config) -> ReloadReport:
        """Put a new (already validated) configuration's live settings in force.

        One assignment: surveys in progress keep the settings they started with.
        """
        report = reload_report(self.config, self._loaded, config)
        self._live = live_settings(config)
        self._loaded = config
        return report

    async def stop(self, grace: float = 5.0) -> Drained:
        """Let open surveys finish (up to `grace`), then flush and close everything.

        The flush after the last survey gets at most FLUSH_SECONDS: a long
        survey drain must not also mean a long wait on a failing webhook.
        """
        drained = Drained()
        if self.agi is not None:
            drained = await self.agi.stop(grace)
        flush = min(grace, FLUSH_SECONDS)
        unfinished = await self.background.drain(flush)
        if unfinished:
            log.error("%d survey writes did not finish before shutdown", unfinished)
        if self.web is not None:
            await self.web.stop()
        if self.alerts is not None:
            await self.alerts.stop(flush)
        await asyncio.gather(*(link.stop(flush) for link in self.links.values()))
        await cancel_all(self._tasks)
        if self.writer is not None:
            await self.writer.close()
            self.writer = None
        await self._dispose_engines()
        return drained

    async def _dispose_engines(self) -> None:
        engines = [*self._caller_engines, self._engine]
        self._caller_engines = []
        self._engine = None
        await asyncio.gather(*(engine.dispose() for engine in engines if engine is not None))

    # --- ServiceMetrics (for /metrics) and SurveyObserver (for the AGI route) ---

    def ami_connected(self) -> bool:
        """Every PBX's AMI session is logged in."""
        return all(link.connected for link in self.links.values())

    def ami_connected_by_pbx(self) -> Mapping[str, bool]:
        return {name: link.connected for name, link in self.links.items()}

    def calls_tracked(self) -> int:
        return sum(link.tracker.tracked_count for link in self.links.values())

    def surveys_by_status(self) -> Mapping[str, int]:
        return dict(self._finished_surveys)

    def agi_sessions_open(self) -> int:
        return self.agi.open_sessions if self.agi is not None else 0

    def db_write_latency(self) -> LatencySnapshot:
        return self._write_latency.snapshot()

    def spool_depth(self) -> int:
        return self.writer.spool_depth if self.writer is not None else 0

    def agi_connections_refused(self) -> Mapping[str, int]:
        refused = Counter(self._agi_refused)
        if self.agi is not None:
            refused.update(self.agi.refused)
        return dict(refused)

    def _bound_descriptors(self) -> None:
        """Raise the open-file limit to what the caps may use, and keep asyncio's
        accept errors (out of descriptors) to a line a minute instead of one per
        attempt (they once wrote 133 MB of log in 30 s)."""
        wanted = descriptors.needed(self.config)
        soft = descriptors.raise_soft_limit(wanted)
        if soft < wanted:
            log.warning(
                "the open-file limit is %d, below the %d descriptors the configured caps may "
                "use ([agi] max_sessions, max_unidentified, [web] max_connections): raise "
                "LimitNOFILE (systemd) or ulimit -n, or lower the caps",
                soft,
                wanted,
            )
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is None:
            warnings = RateLimitedWarnings(time.monotonic)

            def quieter(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
                message = str(context.get("message", ""))
                if message.startswith("socket.accept() out of system resource"):
                    suppressed = warnings.due("accept")
                    if suppressed is None:
                        return
                    log.error(
                        "cannot accept connections: %s%s",
                        context.get("exception") or message,
                        since_last(suppressed),
                    )
                    return
                loop.default_exception_handler(context)

            loop.set_exception_handler(quieter)

    def _unknown_call_refusal(self, link: PbxLink) -> Callable[[str], bool]:
        """With [agi] refuse_unknown_calls: a Linkedid AMI never saw, while it is connected."""

        def refuse(linkedid: str) -> bool:
            if not self.config.agi.refuse_unknown_calls or not link.connected:
                return False
            if link.tracker.knows(linkedid):
                return False
            self._agi_refused["unknown_call"] += 1
            return True

        return refuse

    def writes_held(self) -> int:
        return self.writer.held if self.writer is not None else 0

    def writes_lost(self) -> int:
        return self.writer.lost if self.writer is not None else 0

    def database_down(self) -> bool:
        return self.writer.down if self.writer is not None else False

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

    async def _start_writer(self, engine: AsyncEngine) -> GroupCommitWriter:
        """The group-commit writer; it first replays what an outage left spooled."""
        database = self.config.database
        path = spool_path(database.spool_dir, database.url)
        for other in other_spools(path):
            log.warning("spool %s belongs to another database URL: not replayed", other)
        writer = GroupCommitWriter(
            engine,
            Spool(path),
            batch_size=database.batch_size,
            max_held=database.max_held_writes,
            observe=self._write_latency.observe,
        )
        try:
            await writer.start()
        except BaseException:
            await self._dispose_engines()
            raise
        self.writer = writer
        return writer
