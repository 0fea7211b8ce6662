"""Faults that leave the database up but unable to take writes lose no answer.

Each test drives the real service over TCP with the simulated PBX while the
fault is on, then lifts it: PostgreSQL turned read-only (as after a failover,
by `default_transaction_read_only` and ending its sessions), one full disk
under both the SQLite file and the spool (a small tmpfs), and a SQLite file
that cannot be written (immutable, so even root cannot write it). Every
caller is surveyed to the end while the fault lasts, and everything they
answered is in the database once it takes writes again, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from ivr.config.settings import DatabaseConfig
from ivr.core.domain import SurveyStatus
from ivr.runtime.service import Service
from ivr.sim import CallPlan, CallResult, SimulatedPbx, Turn
from storage.database import create_engine, normalize_url, session_factory, upgrade
from storage.repository import SqlSurveyRepository
from storage.writer import GroupCommitWriter
from tests.helpers.stack import PBX, service_config, started_pbx
from tests.helpers.waiting import wait_for


def plan(number: int) -> CallPlan:
    """Keys pressed while each question plays (barge-in): robust on a busy machine."""
    agent, company = 2 + number % 8, 2 + (number * 3) % 8
    return CallPlan(survey=(Turn.keys(str(agent), at=0.01), Turn.keys(str(company), at=0.01)))


def given(number: int) -> tuple[int, ...]:
    return tuple(int(turn.presses[0].keys) for turn in plan(number).survey)


def spooled_service(ami_port: int, agi_port: int, url: str, spool: Path) -> Service:
    """The service of these tests, its spool where the test puts it."""
    config = service_config(ami_port, url, agi_port)
    return Service(
        dataclasses.replace(config, database=DatabaseConfig(url=url, spool_dir=str(spool)))
    )


async def health(service: Service) -> dict[str, object]:
    assert service.web is not None
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{service.web.url}/healthz") as reply,
    ):
        document = await reply.json()
    assert isinstance(document, dict)
    return document


async def run_calls(
    pbx: SimulatedPbx,
    count: int,
    spacing: float,
    at: Callable[[int], Awaitable[None]],
) -> list[CallResult]:
    """`count` calls `spacing` apart; `at(n)` runs before call n is placed."""
    calls = []
    for number in range(count):
        await at(number)
        calls.append(pbx.start_call(plan(number)))
        await asyncio.sleep(spacing)
    return list(await asyncio.gather(*calls))


async def stored_scores(
    url: str, results: list[CallResult]
) -> tuple[list[tuple[int, ...] | None], list[SurveyStatus | None]]:
    engine = create_engine(url)
    try:
        repository = SqlSurveyRepository(session_factory(engine))
        scores, statuses = [], []
        for result in results:
            survey = await repository.get_survey(PBX, result.linkedid)
            scores.append(
                tuple(a.value for a in survey.answers if a.value is not None) if survey else None
            )
            statuses.append(survey.status if survey else None)
        return scores, statuses
    finally:
        await engine.dispose()


async def written_back(writer: GroupCommitWriter, timeout: float) -> bool:
    async def done() -> bool:
        await writer.flush()
        return not writer.down and writer.spool_depth == 0 and writer.held == 0

    return await wait_for(done, timeout)


# --- PostgreSQL read-only ------------------------------------------------------------


async def _autocommit(url: sa.URL, *statements: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await autocommit.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def own_postgres(postgres_database_url: str) -> AsyncIterator[tuple[str, sa.URL]]:
    """A migrated database of this test's own (ALTER DATABASE touches no other test),
    and a URL to the session's database to administer it from."""
    admin = normalize_url(postgres_database_url)
    name = f"ivr_ro_{secrets.token_hex(4)}"
    await _autocommit(admin, f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        yield url, admin
    finally:
        await _autocommit(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def set_read_only(admin: sa.URL, database: str, read_only: bool) -> None:
    """As a failover does: new sessions are read-only, and the old ones are gone."""
    setting = "on" if read_only else "off"
    await _autocommit(
        admin,
        f'ALTER DATABASE "{database}" SET default_transaction_read_only = {setting}',
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - our own name
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
    )


@pytest.mark.postgres
async def test_postgresql_turned_read_only_for_8_s_during_100_calls_loses_no_answer(
    own_postgres: tuple[str, sa.URL], tmp_path: Path
) -> None:
    """Writes refused with `cannot execute INSERT in a read-only transaction` are an
    outage, not bad data: spooled, every caller surveyed to the end, and written
    back once the database takes writes again (the pooled read-only sessions
    are replaced, not reused)."""
    url, admin = own_postgres
    database = normalize_url(url).database
    assert database is not None
    pbx, agi_port = await started_pbx()
    service = spooled_service(pbx.ami_port, agi_port, url, tmp_path / "spool")
    await service.start()
    deepest = 0
    try:
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        writer = service.writer
        assert writer is not None
        read_only_since = 0.0

        async def fault(number: int) -> None:
            nonlocal deepest, read_only_since
            deepest = max(deepest, writer.spool_depth)
            loop = asyncio.get_running_loop()
            if number == 20:
                await set_read_only(admin, database, True)
                read_only_since = loop.time()
            if read_only_since and loop.time() - read_only_since >= 8.0:
                await set_read_only(admin, database, False)
                read_only_since = 0.0

        results = await run_calls(pbx, 100, 0.1, fault)
        if read_only_since:
            await asyncio.sleep(
                max(0.0, 8.0 - (asyncio.get_running_loop().time() - read_only_since))
            )
            await set_read_only(admin, database, False)
        assert await written_back(writer, 60.0)
        await service.background.drain(10.0)
        failed = writer.failed
    finally:
        await service.stop(grace=2.0)
        await pbx.stop()
    scores, statuses = await stored_scores(url, results)
    assert (True, 0) == (deepest > 0, failed)
    assert [given(n) for n in range(100)] == scores
    assert [SurveyStatus.COMPLETED] * 100 == statuses


# --- One full disk under the database and the spool ---------------------------------


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(  # noqa: S603 - fixed arguments, our own folder
        ["/bin/mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["/bin/umount", "-l", str(where)], check=False)  # noqa: S603 - a fixed umount of the test's own mount point


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; return the file to delete to free them."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for block in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(descriptor, b"\0" * block):
                    pass
    finally:
        os.close(descriptor)
    return filler


async def test_one_full_disk_under_sqlite_and_the_spool_holds_answers_in_memory(
    tmp_path: Path,
) -> None:
    """Neither the database nor the spool can take a write: surveys go on, the
    writes wait in memory (healthz says degraded, /metrics counts them), and
    they are stored once space is freed, without a restart."""
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        url = f"sqlite+aiosqlite:///{disk / 'ivr-survey.sqlite3'}"
        await upgrade(url)
        pbx, agi_port = await started_pbx()
        service = spooled_service(pbx.ami_port, agi_port, url, disk / "spool")
        await service.start()
        filler: Path | None = None
        most_held = 0
        degraded: list[dict[str, object]] = []
        try:
            assert service.ami is not None
            assert await service.ami.wait_logged_in(5.0)
            writer = service.writer
            assert writer is not None

            async def fault(number: int) -> None:
                nonlocal filler, most_held
                most_held = max(most_held, writer.held)
                if number == 10:
                    filler = fill(disk)
                if number == 50:
                    report = await health(service)
                    if report["status"] != "ok":
                        degraded.append(report)

            results = await run_calls(pbx, 60, 0.05, fault)
            await writer.flush()
            most_held = max(most_held, writer.held)
            assert filler is not None
            filler.unlink()  # noqa: ASYNC240 - one unlink, the point of the test
            assert await written_back(writer, 60.0)
            await service.background.drain(10.0)
            lost, failed = writer.lost, writer.failed
            recovered = await health(service)
        finally:
            await service.stop(grace=2.0)
            await pbx.stop()
        scores, statuses = await stored_scores(url, results)
    assert (True, 0, 0) == (most_held > 0, lost, failed)
    assert ["degraded"] == [report["status"] for report in degraded]
    assert "held in memory" in json.dumps(degraded)
    assert {"status": "ok", "problems": []} == recovered
    assert [given(n) for n in range(60)] == scores
    assert [SurveyStatus.COMPLETED] * 60 == statuses


# --- A SQLite file that cannot be written --------------------------------------------


def immutable(path: Path, on: bool) -> None:
    flag = "+i" if on else "-i"
    changed = subprocess.run(  # noqa: S603 - fixed arguments, our own file
        [shutil.which("chattr") or "/usr/bin/chattr", flag, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if changed.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {changed.stderr.strip()}")


async def test_a_read_only_sqlite_file_is_written_back_while_running(tmp_path: Path) -> None:
    """The file cannot be written when the service starts (SQLite then opens it
    read-only, and that connection stays read-only): answers are spooled, and
    once the file is writable they are stored without a restart."""
    database = tmp_path / "ivr-survey.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    immutable(database, True)
    pbx, agi_port = await started_pbx()
    service = spooled_service(pbx.ami_port, agi_port, url, tmp_path / "spool")
    try:
        await service.start()
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        writer = service.writer
        assert writer is not None

        async def nothing(number: int) -> None:
            return None

        results = await run_calls(pbx, 20, 0.05, nothing)
        await writer.flush()
        spooled = writer.spool_depth
        immutable(database, False)
        assert await written_back(writer, 60.0)
        await service.background.drain(10.0)
    finally:
        immutable(database, False)
        await service.stop(grace=2.0)
        await pbx.stop()
    scores, statuses = await stored_scores(url, results)
    assert True is (spooled > 0)
    assert [given(n) for n in range(20)] == scores
    assert [SurveyStatus.COMPLETED] * 20 == statuses
