"""Reports count the days of `[reports] timezone`, on SQLite and PostgreSQL.

Each case stores surveys a minute either side of a local midnight (and, in
Madrid, around both DST changes) and compares the reports with counts made by
hand: first straight from the raw tables, then from the rollups refreshed in
the middle of the case and after it. Stored times stay UTC throughout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ports import Grouping, Period, ResponseFilter
from storage.analytics import RollupState, SqlReportReader
from storage.database import local_day
from tests.helpers.writes import CommittedWrites
from tests.storage.zone_surveys import store_surveys
from tests.web.scenario import NOW


@dataclass(frozen=True, slots=True)
class ZoneCase:
    """Surveys at these UTC moments fall on these local days of `zone`."""

    zone: str
    moments: tuple[datetime, ...]
    days: dict[str, int]
    months: dict[str, int]

    @property
    def period(self) -> Period:
        first = min(date.fromisoformat(day) for day in self.days)
        last = max(date.fromisoformat(day) for day in self.days)
        return Period(first - timedelta(days=1), last + timedelta(days=1))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


CASES = [
    pytest.param(
        # UTC+3:30, no DST: midnight of Mar 4 is Mar 3 20:30 UTC.
        ZoneCase(
            "Asia/Tehran",
            (utc(2025, 3, 3, 20, 29), utc(2025, 3, 3, 20, 31), utc(2025, 3, 3, 23, 0)),
            {"2025-03-03": 1, "2025-03-04": 2},
            {"2025-03-01": 3},
        ),
        id="tehran",
    ),
    pytest.param(
        # UTC+3: midnight of Mar 4 is Mar 3 21:00 UTC.
        ZoneCase(
            "Europe/Moscow",
            (utc(2025, 3, 3, 20, 59), utc(2025, 3, 3, 21, 1), utc(2025, 3, 4, 20, 59)),
            {"2025-03-03": 1, "2025-03-04": 2},
            {"2025-03-01": 3},
        ),
        id="moscow",
    ),
    pytest.param(
        # Sunday Mar 30: 02:00 CET becomes 03:00 CEST (01:00 UTC). The day
        # begins at 23:00 UTC (UTC+1) and ends at 22:00 UTC (UTC+2): 23 hours.
        ZoneCase(
            "Europe/Madrid",
            (
                utc(2025, 3, 29, 22, 59),
                utc(2025, 3, 29, 23, 1),
                utc(2025, 3, 30, 1, 30),
                utc(2025, 3, 30, 21, 59),
                utc(2025, 3, 30, 22, 1),
            ),
            {"2025-03-29": 1, "2025-03-30": 3, "2025-03-31": 1},
            {"2025-03-01": 5},
        ),
        id="madrid-spring",
    ),
    pytest.param(
        # Sunday Oct 26: 03:00 CEST becomes 02:00 CET (01:00 UTC), so 02:30
        # happens twice (00:30 and 01:30 UTC). The day is 25 hours, from
        # 22:00 UTC (UTC+2) to 23:00 UTC (UTC+1).
        ZoneCase(
            "Europe/Madrid",
            (
                utc(2025, 10, 25, 21, 59),
                utc(2025, 10, 25, 22, 1),
                utc(2025, 10, 26, 0, 30),
                utc(2025, 10, 26, 1, 30),
                utc(2025, 10, 26, 22, 59),
                utc(2025, 10, 26, 23, 1),
            ),
            {"2025-10-25": 1, "2025-10-26": 4, "2025-10-27": 1},
            {"2025-10-01": 6},
        ),
        id="madrid-autumn",
    ),
    pytest.param(
        # UTC-5 in winter: Feb 1 begins at 05:00 UTC, and a survey at
        # 04:59 UTC on Feb 1 is still January's.
        ZoneCase(
            "America/New_York",
            (utc(2025, 2, 1, 4, 59), utc(2025, 2, 1, 5, 1), utc(2025, 2, 1, 23, 30)),
            {"2025-01-31": 1, "2025-02-01": 2},
            {"2025-01-01": 1, "2025-02-01": 2},
        ),
        id="new-york",
    ),
]


async def counted(reader: SqlReportReader, case: ZoneCase) -> tuple[object, ...]:
    """Promoters per local day and month, and each day's offered surveys and
    listed responses, as the reports give them."""
    days = await reader.nps(case.period, Grouping.DAY)
    months = await reader.nps(case.period, Grouping.MONTH)
    offered = {}
    listed = {}
    for day in case.days:
        one = Period(date.fromisoformat(day), date.fromisoformat(day))
        offered[day] = sum(row.offered for row in await reader.funnel(one))
        page = await reader.responses(ResponseFilter(period=one), after=None, limit=50)
        listed[day] = len(page.rows)
    return (
        {row.group: row.summary.promoters for row in days},
        {row.group: row.summary.promoters for row in months},
        offered,
        listed,
    )


@pytest.mark.parametrize("case", CASES)
async def test_days_are_the_configured_zones_days_raw_and_rolled_up(
    case: ZoneCase,
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Day, month, funnel and responses counts follow the zone's midnights,
    read raw, from rollups cut off in the middle of the case, and after it."""
    await store_surveys(repository, case.moments)
    clock = [NOW]
    reader = SqlReportReader(database_sessions, clock=lambda: clock[0], zone=ZoneInfo(case.zone))
    raw = await counted(reader, case)
    clock[0] = case.moments[len(case.moments) // 2] + timedelta(minutes=10, seconds=30)
    await reader.refresh()
    halfway = await counted(reader, case)
    clock[0] = NOW
    await reader.refresh()
    rolled = await counted(reader, case)

    expected = (case.days, case.months, case.days, case.days)
    assert [expected, expected, expected] == [raw, halfway, rolled]


@pytest.mark.parametrize("case", CASES)
async def test_another_zone_than_the_rollups_gives_that_zones_counts(
    case: ZoneCase,
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Rollups kept in UTC days; a reader of another zone (the API's `tz=`)
    gives what a reader configured for that zone gives."""
    await store_surveys(repository, case.moments)
    utc_reader = SqlReportReader(database_sessions, clock=lambda: NOW)
    await utc_reader.refresh()

    actual = await counted(utc_reader.in_zone(ZoneInfo(case.zone)), case)

    assert (case.days, case.months, case.days, case.days) == actual


async def test_a_changed_zone_rebuilds_the_rollups_and_the_figures_follow(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rollups built for UTC, then the service restarts with Asia/Tehran: the
    next refresh rebuilds them in Tehran days (logged with its duration), the
    state row says so, and the day counts move across midnight."""
    await store_surveys(
        repository, (utc(2025, 3, 3, 20, 29), utc(2025, 3, 3, 20, 31), utc(2025, 3, 3, 23, 0))
    )
    period = Period(date(2025, 3, 3), date(2025, 3, 4))
    before = SqlReportReader(database_sessions, clock=lambda: NOW)
    await before.refresh()
    in_utc = await before.nps(period, Grouping.DAY)
    after = SqlReportReader(database_sessions, clock=lambda: NOW, zone=ZoneInfo("Asia/Tehran"))
    with caplog.at_level(logging.INFO, logger="storage.rollup_refresh"):
        await after.refresh()
    in_tehran = await after.nps(period, Grouping.DAY)
    async with database_sessions() as session:
        zone = (await session.execute(sa.select(RollupState.zone))).scalar_one()
    rebuilt = [r.getMessage() for r in caplog.records if "rebuilt" in r.getMessage()]

    assert (
        {"2025-03-03": 3},
        {"2025-03-03": 1, "2025-03-04": 2},
        "Asia/Tehran",
        ["Asia/Tehran days (they were kept for UTC days)"],
    ) == (
        {row.group: row.summary.promoters for row in in_utc},
        {row.group: row.summary.promoters for row in in_tehran},
        zone,
        [message.split("rebuilt for ")[1].split(" in ")[0] for message in rebuilt],
    )


@pytest.mark.parametrize(
    ("stored", "zone", "expected"),
    [
        pytest.param("2025-03-03 20:29:59.999999", "Asia/Tehran", "2025-03-03", id="tehran-before"),
        pytest.param("2025-03-03 20:30:00.000000", "Asia/Tehran", "2025-03-04", id="tehran-at"),
        pytest.param("2025-03-30 21:59:00.000000", "Europe/Madrid", "2025-03-30", id="cest"),
        pytest.param("2025-10-26 22:59:00.000000", "Europe/Madrid", "2025-10-26", id="cet"),
        pytest.param("2025-02-01 04:59:00.000000", "America/Bogota", "2025-01-31", id="west"),
        pytest.param("2025-02-01 04:59:00+00:00", "America/Bogota", "2025-01-31", id="offset"),
    ],
)
def test_sqlite_local_day_reads_stored_utc_text_in_the_zone(
    stored: str, zone: str, expected: str
) -> None:
    """The function registered on SQLite connections: UTC text in, local day out."""
    assert expected == local_day(stored, zone)


def test_sqlite_local_day_of_null_is_null() -> None:
    """A call rebuilt without its start time has no day."""
    assert None is local_day(None, "Asia/Tehran")
