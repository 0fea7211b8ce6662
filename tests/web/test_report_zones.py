"""The API reads days in `[reports] timezone`, or in a request's `tz`.

Three surveys around Tehran's midnight of Mar 3 to 4, 2025 (Asia/Tehran is
UTC+3:30): 20:29 UTC is Mar 3 at 23:59 there, 20:31 and 23:00 UTC are Mar 4.
In UTC all three are Mar 3's. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.adapters.web import FixedMetrics, create_app
from storage.analytics import SqlReportReader
from tests.helpers.web import ADMIN, settings
from tests.helpers.writes import CommittedWrites
from tests.storage.zone_surveys import store_surveys
from tests.web.scenario import NOW

Client = TestClient[web.Request, web.Application]
TEHRAN = ZoneInfo("Asia/Tehran")
MOMENTS = (
    datetime(2025, 3, 3, 20, 29, tzinfo=UTC),
    datetime(2025, 3, 3, 20, 31, tzinfo=UTC),
    datetime(2025, 3, 3, 23, 0, tzinfo=UTC),
)
DAYS = {"from": "2025-03-03", "to": "2025-03-04"}
# Two surveys in Tehran's Mar 4, none in UTC's.
MARCH_4 = {"from": "2025-03-04", "to": "2025-03-04"}
REPORT_PATHS = (
    "/api/nps",
    "/api/agent-vs-company",
    "/api/champions",
    "/api/nps-by-duration",
    "/api/funnel",
    "/api/outliers",
    "/api/responses",
    "/api/responses.csv",
)


@pytest.fixture
async def stored(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> async_sessionmaker[AsyncSession]:
    await store_surveys(repository, MOMENTS)
    return database_sessions


async def serving(
    sessions: async_sessionmaker[AsyncSession], zone: ZoneInfo
) -> AsyncIterator[Client]:
    """The app over a reader configured for `zone`, its rollups refreshed."""
    reader = SqlReportReader(sessions, clock=lambda: NOW, zone=zone)
    await reader.refresh()
    app = create_app(
        settings(), reader, FixedMetrics(), today=lambda: date(2025, 3, 4), refresh_rollups=False
    )
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def tehran(stored: async_sessionmaker[AsyncSession]) -> AsyncIterator[Client]:
    """Configured `[reports] timezone = "Asia/Tehran"`."""
    async for client in serving(stored, TEHRAN):
        yield client


@pytest.fixture
async def in_utc(stored: async_sessionmaker[AsyncSession]) -> AsyncIterator[Client]:
    """Configured with the default, UTC."""
    async for client in serving(stored, ZoneInfo("UTC")):
        yield client


async def get(client: Client, path: str, **query: str) -> Any:
    async with client.get(path, params=query, headers=ADMIN) as reply:
        assert 200 == reply.status, await reply.text()
        if path.endswith(".csv"):
            return await reply.text()
        return await reply.json()


def by_day(document: Any) -> list[tuple[str, int]]:
    return [(row["group"], row["promoters"]) for row in document["rows"]]


async def test_nps_by_day_groups_by_the_configured_zones_days(tehran: Client) -> None:
    """Tehran: one survey on Mar 3, two on Mar 4."""
    document = await get(tehran, "/api/nps", group_by="day", **DAYS)

    assert [("2025-03-03", 1), ("2025-03-04", 2)] == by_day(document)


async def test_from_and_to_are_the_configured_zones_dates(tehran: Client) -> None:
    """Tehran's Mar 4 alone holds the two surveys after its midnight, both
    listed and both offered in the funnel."""
    nps = await get(tehran, "/api/nps", group_by="all", **MARCH_4)
    responses = await get(tehran, "/api/responses", **MARCH_4)
    funnel = await get(tehran, "/api/funnel", **MARCH_4)

    assert (2, 2, 2) == (
        nps["rows"][0]["promoters"],
        len(responses["rows"]),
        sum(row["offered"] for row in funnel["rows"]),
    )


async def test_utc_is_the_default_zone(in_utc: Client) -> None:
    """Without [reports] timezone all three are Mar 3's (UTC days)."""
    document = await get(in_utc, "/api/nps", group_by="day", **DAYS)

    assert [("2025-03-03", 3)] == by_day(document)


@pytest.mark.parametrize("path", REPORT_PATHS)
async def test_tz_on_a_request_gives_what_configuring_that_zone_gives(
    path: str, stored: async_sessionmaker[AsyncSession]
) -> None:
    """Every report endpoint over Tehran's Mar 4: `tz=Asia/Tehran` on a
    UTC-configured service (read from the raw rows) answers exactly what a
    Tehran-configured one does, and `tz=UTC` on the Tehran one what the UTC
    one does."""
    documents = {}
    for configured, asked in ((TEHRAN, None), (ZoneInfo("UTC"), "Asia/Tehran")):
        async for client in serving(stored, configured):
            query = MARCH_4 if asked is None else {**MARCH_4, "tz": asked}
            documents[configured.key] = await get(client, path, **query)
    for configured, asked in ((ZoneInfo("UTC"), None), (TEHRAN, "UTC")):
        async for client in serving(stored, configured):
            query = MARCH_4 if asked is None else {**MARCH_4, "tz": asked}
            documents[f"{configured.key} back"] = await get(client, path, **query)

    assert (documents["Asia/Tehran"], documents["UTC back"]) == (
        documents["UTC"],
        documents["Asia/Tehran back"],
    )


async def test_the_openapi_document_names_the_configured_zone(tehran: Client) -> None:
    """`tz` defaults to the configured zone on every report, and the document says so."""
    async with tehran.get("/api/openapi.json") as reply:
        document = await reply.json()
    defaults = {
        path: [
            param["schema"].get("default")
            for param in document["paths"][path]["get"]["parameters"]
            if param["name"] == "tz"
        ]
        for path in REPORT_PATHS
    }

    assert ({path: ["Asia/Tehran"] for path in REPORT_PATHS}, True) == (
        defaults,
        "Asia/Tehran's ([reports] timezone)" in document["info"]["description"],
    )
