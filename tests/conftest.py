"""Database fixtures: every storage behaviour is tested on SQLite and PostgreSQL.

Shared by the storage tests and the service's end-to-end tests, so both run
against both databases.

PostgreSQL isolation: several test runs may share one server, so each session
creates its own throwaway database (`ivr_test_<random hex>`) and drops it at the
end, and each test starts from an empty `public` schema in it. When the server
cannot be reached, the PostgreSQL variants are skipped with the URL they tried.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.adapters.fastagi.server import FastAgiServer, Route
from storage.database import (
    DatabaseError,
    create_engine,
    database_errors,
    normalize_url,
    redact_url,
    session_factory,
    upgrade,
)
from tests.helpers.fastagi import StartServer
from tests.helpers.writes import CommittedWrites, committed_writes_on

POSTGRES_URL_VARIABLE = "IVR_SURVEY_TEST_DATABASE_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _run_autocommit(url: URL, *statements: str) -> None:
    """Run statements outside a transaction, as CREATE/DROP DATABASE require."""
    engine = create_engine(url)
    try:
        async with (
            database_errors(f"reach PostgreSQL at {redact_url(url)}"),
            engine.connect() as connection,
        ):
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await autocommit.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped at its end.

    Sync on purpose (driving its own short event loops): a session-wide fixture
    must not hold on to the event loop of whichever test happened to request
    it first.
    """
    server = normalize_url(os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL))
    try:
        asyncio.run(_run_autocommit(server, "SELECT 1"))
    except DatabaseError as error:
        pytest.skip(str(error))
    name = f"ivr_test_{secrets.token_hex(6)}"
    asyncio.run(_run_autocommit(server, f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_run_autocommit(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite (a temporary file), once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ivr-survey.sqlite3'}"
    url: str = request.getfixturevalue("postgres_database_url")
    asyncio.run(
        _run_autocommit(
            normalize_url(url), "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"
        )
    )
    return url


@pytest.fixture
async def database_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the (still empty) test database, disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated_database_url(database_url: str) -> str:
    """The test database upgraded to the head revision."""
    await upgrade(database_url)
    return database_url


@pytest.fixture
async def database_sessions(
    migrated_database_url: str,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the migrated test database."""
    engine = create_engine(migrated_database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def repository(
    database_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[CommittedWrites]:
    """Committed writes and reads on a migrated, empty test database."""
    async with committed_writes_on(database_sessions) as writes:
        yield writes


@pytest.fixture
async def make_server() -> AsyncIterator[StartServer]:
    """FastAGI servers on free loopback ports, stopped (sessions cut short) after the test."""
    servers: list[FastAgiServer] = []

    async def start(route: Route, **options: Any) -> FastAgiServer:
        server = FastAgiServer(route, host="127.0.0.1", port=0, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.hurry()
        await server.stop(grace=0.5)
