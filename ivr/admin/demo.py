"""`ivr-survey demo`: the real service against the built-in simulated PBX.

Nothing is faked on the service side: the same Service that `run` starts logs
in to the simulator's AMI port, tracks its calls, and serves its FastAGI
sessions; answers land in a SQLite file that `export` and `report` read.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.adapters.i18n import Reader
from ivr.adapters.web.auth import Authenticator, hash_password
from ivr.admin.demo_history import PastCall, past_calls
from ivr.admin.report_text import format_report
from ivr.config.settings import Config, DatabaseConfig
from ivr.config.survey_plan import SurveyPlanner
from ivr.runtime.service import Service
from ivr.sim import Agent, AmiAccount, CallPlan, CallResult, SimulatedPbx, run_traffic
from storage.analytics import SqlReportReader
from storage.database import (
    create_engine,
    default_sqlite_url,
    redact_url,
    session_factory,
    upgrade,
)
from storage.reports import nps_report
from storage.repository import SqlSurveyRepository

DEMO_PBX = "demo-pbx"
DEMO_AGENTS = (
    Agent("Alice Martin", "PJSIP/alice"),
    Agent("Bruno Díaz", "PJSIP/bruno"),
    Agent("Chloé Bernard", "PJSIP/chloe"),
    Agent("Dmitri Volkov", "PJSIP/dmitri"),
)
DEMO_QUEUES = ("support", "sales", "billing")
# A realistic day for one agent: about 15 calls of the live mix (some abandon).
HISTORY_CALLS_PER_AGENT_DAY = 15
HISTORY_BATCH = 200
DEMO_USER = "demo"
# The printed sign-in link works once and only while this demo runs: its
# session secret is made anew at each start, so a link from an earlier run is
# refused. A day is longer than anyone leaves a demo running.
DEMO_LINK_SECONDS = 24 * 3600.0
# The demo user's password is random and never shown (the link is the way in);
# few iterations because nobody can guess it and the demo should start at once.
DEMO_PASSWORD_ITERATIONS = 1000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _can_bind(host: str, port: int) -> bool:
    """The demo takes the configured dashboard port when free, any free one otherwise."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def demo_config(
    base: Config, *, ami_port: int, agi_port: int, secret: str, url: str, web_token: str
) -> Config:
    """The user's config with AMI/FastAGI pointed at the simulator on loopback,
    and a dashboard user of the demo's own that the printed link signs in."""
    password_hash = hash_password(secrets.token_urlsafe(18), iterations=DEMO_PASSWORD_ITERATIONS)
    return replace(
        base,
        ami=replace(
            base.ami,
            host="127.0.0.1",
            port=ami_port,
            username="ivr-survey-demo",
            secret=secret,
            name=DEMO_PBX,
        ),
        agi=replace(base.agi, host="127.0.0.1", port=agi_port),
        database=DatabaseConfig(url=url),
        web=replace(
            base.web,
            port=base.web.port if _can_bind(base.web.host, base.web.port) else 0,
            tokens=f"{base.web.tokens} admin:{web_token}".strip(),
            users=f"{base.web.users} {DEMO_USER}:admin:{password_hash}".strip(),
            session_secret=secrets.token_urlsafe(32),
        ),
        survey=replace(base.survey, answer_timeout=3.0, ten_timeout=1.0),
    )


async def run_demo(
    config: Config,
    *,
    calls: int | None,
    concurrency: int,
    database_url: str | None,
    seed: int | None,
    history_days: int = 0,
) -> int:
    url = _demo_database_url(config, database_url)
    revision = await upgrade(url)
    started = await _start(config, url)
    # Before the banner: the printed dashboard link then opens onto the history.
    rng = random.Random(seed)
    if history_days:
        await _lay_down_history(started, rng, history_days)
    _print_banner(
        started.service,
        pbx_port=started.pbx.ami_port,
        agi_port=started.agi_port,
        url=url,
        revision=revision,
        web_token=started.web_token,
        calls=calls,
    )
    try:
        await _place_calls(started, rng, calls=calls, concurrency=concurrency)
    finally:
        await started.service.stop()
        await started.pbx.stop()
        await started.reads.dispose()
    await _print_report(url)
    return 0


def _demo_database_url(config: Config, database_url: str | None) -> str:
    """Simulated calls must never land among real ones, so a configured database
    is left alone (and the user told so) unless --database names one."""
    url = database_url or f"sqlite+aiosqlite:///{Path.cwd() / 'ivr-survey-demo.db'}"
    if database_url is None and config.database.url != default_sqlite_url(Path.cwd()):
        print(
            f"demo: the configured database {redact_url(config.database.url)} is left alone "
            "(simulated calls never go into it); the demo writes to its own file, "
            "or to --database URL",
            flush=True,
        )
    return url


@dataclass(frozen=True)
class _Started:
    """Kept together because the banner, the traffic and the shutdown each need
    several of them, and the ports and secrets are only known once started.
    `repository` reads on an engine of its own (`reads`), as the service keeps
    its own engines to itself."""

    pbx: SimulatedPbx
    service: Service
    settings: Config
    agi_port: int
    web_token: str
    reads: AsyncEngine
    repository: SqlSurveyRepository


async def _start(config: Config, url: str) -> _Started:
    """The simulator starts first because the service's config names its AMI port.
    A failed login is reported, not fatal: the service keeps retrying, as under `run`."""
    secret = secrets.token_urlsafe(12)
    agi_port = _free_port()
    pbx = SimulatedPbx(
        name=DEMO_PBX,
        accounts=(AmiAccount("ivr-survey-demo", secret),),
        agi_port=agi_port,
        time_scale=0.02,
        prompt_seconds=0.4,
    )
    await pbx.start()
    web_token = secrets.token_urlsafe(18)
    settings = demo_config(
        config,
        ami_port=pbx.ami_port,
        agi_port=agi_port,
        secret=secret,
        url=url,
        web_token=web_token,
    )
    service = Service(settings)
    await service.start()
    assert service.ami is not None
    if not await service.ami.wait_logged_in(10.0):
        print("demo: the service could not log in to the simulated PBX", file=sys.stderr)
    reads = create_engine(url)
    repository = SqlSurveyRepository(session_factory(reads))
    return _Started(pbx, service, settings, agi_port, web_token, reads, repository)


async def _place_calls(
    started: _Started, rng: random.Random, *, calls: int | None, concurrency: int
) -> None:
    """Ctrl-C and SIGTERM cancel only the traffic, so the calls already placed are
    still printed and the caller can stop the service and print the report."""
    printer = _CallPrinter(started.repository)
    traffic = asyncio.create_task(
        run_traffic(
            started.pbx,
            rng,
            calls=calls,
            concurrency=concurrency,
            pause=0.2,
            on_result=printer.on_result,
            agents=DEMO_AGENTS,
            queues=DEMO_QUEUES,
        )
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, traffic.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await traffic
    await printer.settle()
    if traffic.cancelled():
        print("\ndemo: stopped (calls still in progress were hung up)", flush=True)
    else:
        print(f"\ndemo: {printer.count} calls done", flush=True)


async def _lay_down_history(started: _Started, rng: random.Random, days: int) -> None:
    """Past days from the simulated callers and score model, written through the
    service's own writer, so the dashboard's trends and rankings mean something
    at first look. A demo database that already has past days keeps them."""
    assert started.service.writer is not None
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    if await started.repository.calls_started_before(DEMO_PBX, midnight):
        print("demo: this database already has earlier days; no history generated", flush=True)
        return
    writer, settings = started.service.writer, started.settings
    privacy = settings.privacy.privacy()
    spec = SurveyPlanner(settings).plan(None).spec
    generated = past_calls(
        rng,
        pbx=DEMO_PBX,
        spec=spec,
        agents=DEMO_AGENTS,
        queues=DEMO_QUEUES,
        days=days,
        calls_per_day=HISTORY_CALLS_PER_AGENT_DAY * len(DEMO_AGENTS),
        today=today,
    )

    async def store(past: PastCall) -> bool:
        call = privacy.protect(past.call)
        if past.decision is not None:
            await writer.record_decision(call, past.decision)
        if past.start is None or past.status is None or past.finished_at is None:
            await writer.save_call(call)
            return False
        survey_id = await writer.begin_survey(call, past.start)
        if survey_id is None:
            return False
        for answer in past.answers:
            await writer.save_answer(survey_id, answer)
        await writer.finish_survey(survey_id, past.status, past.finished_at)
        return True

    calls = surveys = 0
    batch: list[PastCall] = []
    for past in generated:
        batch.append(past)
        if len(batch) == HISTORY_BATCH:
            surveys += sum(await asyncio.gather(*(store(one) for one in batch)))
            calls, batch = calls + len(batch), []
    surveys += sum(await asyncio.gather(*(store(one) for one in batch)))
    calls += len(batch)
    await writer.flush()
    await _rebuild_rollups(settings.database.url)
    print(
        f"demo: generated history (not live calls): {calls} calls and {surveys} surveys over "
        f"the {days} days before today, from the simulated callers' score model; "
        "use --history-days 0 to skip it",
        flush=True,
    )


async def _rebuild_rollups(url: str) -> None:
    """The past days were written behind the rollups' cut-off: build them anew."""
    engine = create_engine(url)
    try:
        await SqlReportReader(session_factory(engine)).refresh(full=True)
    finally:
        await engine.dispose()


class _CallPrinter:
    """Prints each finished call as the database holds it, in the order calls end."""

    def __init__(self, repository: SqlSurveyRepository) -> None:
        self._repository = repository
        self._pending: set[asyncio.Task[None]] = set()
        self.count = 0

    def on_result(self, plan: CallPlan, result: CallResult) -> None:
        task = asyncio.create_task(_after_settling(self._describe(plan, result)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=5.0)

    async def _describe(self, plan: CallPlan, result: CallResult) -> None:
        """Queue and agent as stored, so each line agrees with `report`; the call's
        number is taken when its line is printed, so numbers run in order."""
        stored = await self._repository.get_survey(DEMO_PBX, result.linkedid)
        call = await self._repository.get_call(DEMO_PBX, result.linkedid)
        agent = call.last_agent.name if call and call.last_agent else "-"
        queue = (call.queue if call else None) or "-"
        if stored is None:
            outcome = "no survey"
        else:
            scores = ", ".join(
                f"{answer.question}={'-' if answer.value is None else answer.value}"
                for answer in stored.answers
            )
            outcome = f"{stored.status.value}: {scores or 'no answers'}"
        self.count += 1
        print(
            f"call {self.count:>5}  Linkedid={result.linkedid:<20} {plan.flow.value:<24} "
            f"queue={queue:<10} agent={agent:<16} {outcome}",
            flush=True,
        )


def _print_banner(
    service: Service,
    *,
    pbx_port: int,
    agi_port: int,
    url: str,
    revision: str,
    web_token: str,
    calls: int | None,
) -> None:
    """Where everything is: the simulated PBX, the data, the dashboard and its token."""
    dashboard = "-"
    if service.web:
        token = Authenticator(service.config.web).sign_in_link_token(
            DEMO_USER, valid_seconds=DEMO_LINK_SECONDS
        )
        dashboard = f"{service.web.url}/login/link?token={token}"
    print(
        f"ivr-survey demo: simulated Asterisk AMI on 127.0.0.1:{pbx_port}, "
        f"FastAGI on 127.0.0.1:{agi_port}\n"
        f"  answers go to {redact_url(url)} (schema {revision})\n"
        f"  read them with: IVR_SURVEY_DATABASE_URL='{url}' {_program()} report  (or export)\n"
        f"  dashboard (opens signed in, once): {dashboard}\n"
        f"  API: Authorization: Bearer {web_token}\n"
        f"  {'stops after ' + str(calls) + ' calls' if calls else 'press Ctrl-C to stop'}",
        flush=True,
    )


def _program() -> str:
    """How this demo was started (`.venv/bin/ivr-survey` in the README), so the
    printed command works as pasted; `ivr-survey` when run as `python -m ivr`."""
    started_as = Path(sys.argv[0])
    return shlex.quote(sys.argv[0]) if started_as.name == "ivr-survey" else "ivr-survey"


async def _after_settling(describe: Awaitable[None]) -> None:
    """Give the call's last AMI events a moment to be applied before reading it back.

    A closed stdout (`ivr-survey demo | head`) only stops the printing.
    """
    await asyncio.sleep(0.3)
    with contextlib.suppress(BrokenPipeError):
        await describe


async def _print_report(url: str) -> None:
    engine = create_engine(url)
    try:
        report = await nps_report(session_factory(engine))
    finally:
        await engine.dispose()
    print("\n" + format_report(report, Reader()), flush=True)
