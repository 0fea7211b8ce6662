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

from storage.analytics import SqlReportReader
from tests.helpers.web import app_for
from tests.helpers.writes import CommittedWrites
from tests.web.scenario import NOW, store_history


@pytest.fixture
def reader(database_sessions: async_sessionmaker[AsyncSession]) -> SqlReportReader:
    """The report reader on an empty migrated database, its clock at NOW."""
    return SqlReportReader(database_sessions, clock=lambda: NOW)


@pytest.fixture
async def history(repository: CommittedWrites, reader: SqlReportReader) -> SqlReportReader:
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
