"""Fixtures for the web tests: the hand-worked history, the app, its clients.

The database fixtures come from tests/conftest.py, so every test that takes
`reader` or `client` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.adapters.web import FixedMetrics, create_app
from ivr.adapters.web.auth import hash_password
from ivr.config.settings import WebConfig
from storage.analytics import SqlReportReader
from storage.repository import SqlSurveyRepository
from tests.web.scenario import NOW, store_history

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
PASSWORD = "correct horse battery"
# Few iterations: the tests check the scheme, not its cost.
PASSWORD_HASH = hash_password(PASSWORD, iterations=1000, salt=b"0123456789abcdef")
MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


def settings(**overrides: object) -> WebConfig:
    values: dict[str, object] = {
        "port": 0,
        "tokens": f"admin:{ADMIN_TOKEN} viewer:{VIEWER_TOKEN}",
        "users": f"manager:admin:{PASSWORD_HASH},wall:viewer:{PASSWORD_HASH}",
        "session_secret": "test-session-secret",
        "min_n": 3,
    }
    values.update(overrides)
    return WebConfig(**values)  # type: ignore[arg-type]


def app_for(reader: SqlReportReader, **overrides: object) -> web.Application:
    return create_app(
        settings(**overrides),
        reader,
        FixedMetrics(),
        today=NOW.date,
        refresh_rollups=False,
    )


@pytest.fixture
def reader(database_sessions: async_sessionmaker[AsyncSession]) -> SqlReportReader:
    """The report reader on an empty migrated database, its clock at NOW."""
    return SqlReportReader(database_sessions, clock=lambda: NOW)


@pytest.fixture
async def history(repository: SqlSurveyRepository, reader: SqlReportReader) -> SqlReportReader:
    """The reader over the hand-worked HISTORY, nothing rolled up yet."""
    await store_history(repository)
    return reader


@pytest.fixture
async def client(
    history: SqlReportReader,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """An HTTP client of the app serving HISTORY."""
    async with TestClient(TestServer(app_for(history))) as test_client:
        yield test_client
