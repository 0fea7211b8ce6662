"""The report rollups give exactly what the raw tables give, on both databases.

Each test computes every report straight from the raw tables (nothing rolled
up yet), refreshes the rollups with the clock at some moment, and computes
them again: the two must be equal, whatever mix of month rows, day rows,
total rows and raw rows the second pass reads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import HangupSide, SurveyStatus
from ivr.ports import Duration, Grouping, Period, ResponseFilter
from storage.analytics import (
    DurationDaily,
    FunnelDaily,
    NpsDaily,
    RollupState,
    SqlReportReader,
)
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import answer, call, leg, start
from tests.web.scenario import NOW

MARCH = Period(date(2025, 3, 1), date(2025, 3, 31))
PERIODS = (
    Period(date(2025, 1, 1), date(2025, 4, 30)),
    Period(date(2025, 1, 15), date(2025, 4, 10)),
    Period(date(2025, 2, 1), date(2025, 2, 28)),
    Period(date(2025, 2, 10), date(2025, 3, 20)),
    Period(date(2025, 3, 3), date(2025, 3, 3)),
)
AGENTS = ("Alice", "Bob", "Carol", "Dan")
QUEUES = ("sales", "support")


async def every_report(reader: SqlReportReader, period: Period) -> dict[str, Any]:
    """All the reader's reports over one period, as comparable values."""
    reports: dict[str, Any] = {}
    for grouping in Grouping:
        reports[f"nps {grouping}"] = await reader.nps(period, grouping)
    reports["nps agent filter"] = await reader.nps(period, Grouping.DAY, agent="Bob")
    reports["nps queue filter"] = await reader.nps(period, Grouping.MONTH, queue="sales")
    reports["cells"] = await reader.nps_by_agent_and_queue(period)
    reports["paired"] = await reader.agent_vs_company(period)
    reports["paired sales"] = await reader.agent_vs_company(period, queue="sales")
    for measure in Duration:
        reports[f"duration {measure}"] = await reader.nps_by_duration(period, measure)
    reports["duration support"] = await reader.nps_by_duration(
        period, Duration.TALK, queue="support"
    )
    reports["funnel"] = await reader.funnel(period)
    return reports


async def store_months(repository: CommittedWrites) -> None:
    """Surveys every 2 days from January to April 2025 (scores cycle through 0-10
    and gaps), plus an unsurveyed call a week: month, day and raw rows all occur."""
    moment = datetime(2025, 1, 1, 8, tzinfo=UTC)
    number = 0
    while moment < datetime(2025, 5, 1, tzinfo=UTC):
        number += 1
        agent, queue = AGENTS[number % 4], QUEUES[number % 3 % 2]
        record = call(
            f"m{number}",
            queue=queue,
            agents=(leg(agent, 2000 + number % 4, queue=queue, connected=number * 50_000.0),),
            hold_seconds=None if number % 7 == 0 else (number * 37) % 900,
            talk_seconds=(number * 91) % 1500,
            ended_by=HangupSide.CALLER if number % 9 == 0 else HangupSide.AGENT,
            started_at=moment.timestamp(),
        )
        offset = (moment - datetime(2025, 3, 3, 9, tzinfo=UTC)).total_seconds()
        if number % 5 == 0:
            await repository.save_call(record)
        else:
            survey_id = await repository.begin_survey(record, start(record, offset + 300))
            assert survey_id is not None
            agent_score = None if number % 6 == 0 else number % 11
            company_score = None if number % 4 == 0 else (number * 3) % 11
            await repository.save_answer(
                survey_id, answer("agent", agent_score, seconds=offset + 310)
            )
            await repository.save_answer(
                survey_id, answer("company", company_score, seconds=offset + 320)
            )
            await repository.finish_survey(
                survey_id,
                SurveyStatus.HUNG_UP if number % 13 == 0 else SurveyStatus.COMPLETED,
                moment + timedelta(minutes=6),
            )
        moment += timedelta(days=2, hours=number % 5)


async def test_rolled_up_reports_equal_the_raw_ones(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Refreshed with the clock just after a month's end, then mid-day mid-month,
    then after everything, every report over every period is exactly what the
    raw tables give (month, total, day and raw rows combined)."""
    await store_months(repository)
    clock = [NOW]
    reader = SqlReportReader(database_sessions, clock=lambda: clock[0])
    raw = {period: await every_report(reader, period) for period in PERIODS}
    rolled = {}

    for now in (
        datetime(2025, 3, 1, 0, 5, tzinfo=UTC),
        datetime(2025, 3, 3, 9, 20, tzinfo=UTC),
        NOW,
    ):
        clock[0] = now
        await reader.refresh()
        rolled[now] = {period: await every_report(reader, period) for period in PERIODS}

    assert [raw, raw, raw] == list(rolled.values())


async def test_refresh_builds_month_total_and_day_rows(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """With the cut-off in May, January to April have month rows; days have day
    rows, and the NPS table also per-day totals of every agent and queue."""
    await store_months(repository)
    await SqlReportReader(database_sessions, clock=lambda: NOW).refresh()

    async with database_sessions() as session:
        grains = {
            model.__tablename__: set(
                (await session.execute(sa.select(model.grain).distinct())).scalars()
            )
            for model in (NpsDaily, DurationDaily, FunnelDaily)
        }
        months = set(
            (
                await session.execute(
                    sa.select(NpsDaily.day).where(NpsDaily.grain == "month").distinct()
                )
            ).scalars()
        )

    assert (
        {
            "report_nps_daily": {"day", "month", "total"},
            "report_duration_daily": {"day", "month"},
            "report_funnel_daily": {"day", "month"},
        },
        {date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)},
    ) == (grains, months)


async def test_recent_surveys_are_read_raw_until_the_grace_has_passed(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A survey started 5 minutes before the refresh may still be running: it is
    left out of the rollups (cut-off 10 minutes back) and its answer, saved after
    the refresh, still counts at once."""
    record = call("late", agents=(leg("Alice", 1001),))
    survey_id = await repository.begin_survey(record, start(record, 0))
    assert survey_id is not None
    started = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    reader = SqlReportReader(database_sessions, clock=lambda: started + timedelta(minutes=5))
    await reader.refresh()

    await repository.save_answer(survey_id, answer("agent", 10, seconds=60))
    rows = await reader.nps(MARCH, Grouping.ALL)

    assert [("agent", 1)] == [(row.question, row.summary.promoters) for row in rows]


async def test_a_late_change_shows_after_the_next_settling_refresh(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A survey of two days ago stored after a refresh: not counted until a
    refresh recomputes the settle days, which happens at most an hour later."""
    now = datetime(2025, 3, 5, 12, tzinfo=UTC)
    clock = [now]
    reader = SqlReportReader(database_sessions, clock=lambda: clock[0])
    await reader.refresh()
    record = call("late", agents=(leg("Bob", 1002),))
    survey_id = await repository.begin_survey(record, start(record, 3600))
    assert survey_id is not None
    await repository.save_answer(survey_id, answer("agent", 0))
    before = await reader.nps(MARCH, Grouping.ALL)
    clock[0] = now + timedelta(minutes=5)
    await reader.refresh()
    soon = await reader.nps(MARCH, Grouping.ALL)
    clock[0] = now + timedelta(hours=1, minutes=1)
    await reader.refresh()
    settled = await reader.nps(MARCH, Grouping.ALL)

    assert ([], [], [1]) == (
        [row.summary.detractors for row in before],
        [row.summary.detractors for row in soon],
        [row.summary.detractors for row in settled],
    )


async def test_a_full_refresh_rebuilds_older_corrections(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A change older than the settle days needs refresh(full=True), which
    recomputes everything from the raw tables."""
    reader = SqlReportReader(database_sessions, clock=lambda: NOW)
    await reader.refresh()
    record = call("old", agents=(leg("Bob", 1002),))
    survey_id = await repository.begin_survey(record, start(record, 0))
    assert survey_id is not None
    await repository.save_answer(survey_id, answer("agent", 9))
    await reader.refresh()
    stale = await reader.nps(MARCH, Grouping.ALL)

    await reader.refresh(full=True)
    rebuilt = await reader.nps(MARCH, Grouping.ALL)

    assert ([], [1]) == (
        [row.summary.promoters for row in stale],
        [row.summary.promoters for row in rebuilt],
    )


@pytest.mark.parametrize(
    ("low", "high"),
    [
        # Rare: an estimated handful of Bob's zeros against ~100 answers in all,
        # so his calls are read first (the materialized CTE).
        pytest.param(0, 0, id="agent-first"),
        # Common: any score; walking all surveys newest first fills a page sooner.
        pytest.param(0, 10, id="walk"),
    ],
)
async def test_an_agent_and_score_filter_pages_exactly_the_matching_rows(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
    low: int,
    high: int,
) -> None:
    """Whichever way the rows are found, the pages list exactly the rows the
    unfiltered listing has for that agent and score range, newest first."""
    await store_months(repository)
    reader = SqlReportReader(database_sessions, clock=lambda: NOW)
    period = Period(date(2025, 1, 1), date(2025, 4, 30))
    everything = await reader.responses(ResponseFilter(period), after=None, limit=500)
    paged: list[int] = []
    cursor = None
    while True:
        page = await reader.responses(
            ResponseFilter(period, agent="Bob", question="agent", min_score=low, max_score=high),
            after=cursor,
            limit=3,
        )
        paged += [row.survey_id for row in page.rows]
        if page.next is None:
            break
        cursor = page.next

    expected = [
        row.survey_id
        for row in everything.rows
        if row.agent == "Bob" and row.agent_score is not None and low <= row.agent_score <= high
    ]
    assert (expected, True) == (paged, len(paged) > 0)


def _primary_keys(connection: sa.Connection) -> dict[str, list[str]]:
    inspector = sa.inspect(connection)
    return {
        model.__tablename__: inspector.get_pk_constraint(model.__tablename__)["constrained_columns"]
        for model in (NpsDaily, DurationDaily, FunnelDaily, RollupState)
    }


async def test_migration_0002_creates_the_rollup_primary_keys_of_the_models(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Alembic's comparison does not look at primary keys; these decide what a
    rollup row means, so they are compared here."""
    expected = {
        model.__tablename__: [column.name for column in model.__mapper__.primary_key]
        for model in (NpsDaily, DurationDaily, FunnelDaily, RollupState)
    }

    async with database_sessions() as session:
        connection = await session.connection()
        actual = await connection.run_sync(_primary_keys)

    assert expected == actual
