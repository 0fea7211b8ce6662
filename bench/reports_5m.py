"""Report speed on a real history: 5 million surveys in PostgreSQL.

    python3 bench/reports_5m.py [--server URL] [--surveys N] [--days D] [--reuse] [--keep]
                                [--timezone ZONE]

Creates its own database (`ivr_bench_reports`) on the server, migrates it,
generates a year of calls, surveys and answers inside PostgreSQL itself
(INSERT ... SELECT over generate_series, no rows cross the network), builds the
report rollups, then serves the real web app on a local port and times every
report endpoint over HTTP: median and p95 of several calls after one warm-up.
The baseline is the plain GROUP BY over the raw answers (NPS per agent and
question over the same period, as `storage.reports` computes it); each
endpoint's median is printed as a ratio of the baseline's.

`--reuse` keeps an already loaded database (the load takes minutes), `--keep`
leaves it on the server at the end. `--timezone` serves the reports in that
zone's days (`[reports] timezone`): the rollups are first built in UTC days,
then rebuilt for the zone as a changed configuration would (that rebuild is
timed), and a few requests with `tz=UTC` show the price of asking for a zone
the rollups are not kept in (computed from the raw rows; not held to 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.adapters.web import WebServer
from ivr.adapters.web.metrics import FixedMetrics
from ivr.config.settings import WebConfig
from storage.analytics import SqlReportReader
from storage.database import create_engine, normalize_url, session_factory, upgrade

DATABASE = "ivr_bench_reports"
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a local, throwaway server
AGENTS = 150
QUEUES = 8
LIMIT_MS = 300.0

# Every survey belongs to a call; one call in six has no survey (half of those
# abandoned in the queue, half hung up on by the caller), so the funnel has
# something to show. Ids ascend with time, as a sequence would make them.
LOAD = [
    "SELECT setseed(0.42)",
    "SET work_mem = '256MB'",
    """
    INSERT INTO calls (id, pbx, linkedid, caller_uniqueid, caller_channel, caller_number,
        caller_name, queue, agent_name, agent_interface, hold_seconds, talk_seconds, ended_by,
        abandoned, transferred, partial, started_at, answered_at, ended_at, created_at, updated_at)
    SELECT g, 'pbx1', linkedid, linkedid, 'PJSIP/trunk-' || lpad(to_hex(g), 8, '0'),
        '+98912' || lpad(((g::bigint * 7919) % 10000000)::text, 7, '0'),
        CASE WHEN g % 3 = 0 THEN NULL ELSE 'Caller ' || g END,
        'queue-' || ((agent + CASE WHEN r1 < 0.3 THEN 1 ELSE 0 END) % :queues),
        CASE WHEN g % 12 = 0 THEN NULL ELSE 'Agent ' || lpad(agent::text, 3, '0') END,
        CASE WHEN g % 12 = 0 THEN NULL ELSE 'PJSIP/' || (1000 + agent) END,
        (r2 * r2 * 900)::int,
        CASE WHEN g % 12 = 0 THEN NULL ELSE (30 + r3 * r3 * 1800)::int END,
        CASE WHEN g % 12 = 0 THEN NULL WHEN g % 12 = 6 THEN 'caller'
             WHEN r1 < 0.03 THEN 'transfer' ELSE 'agent' END,
        g % 12 = 0, r1 < 0.03, false,
        started, started + interval '20 seconds', started + interval '10 minutes',
        started, started
    FROM (
        SELECT g, (1700000000 + g)::text || '.' || g AS linkedid,
            (random() * (:agents - 1))::int AS agent, random() AS r1, random() AS r2,
            random() AS r3,
            now() - make_interval(secs => (:calls - g) * (:days * 86400.0 / :calls)) AS started
        FROM generate_series(1, :calls) AS g
    ) AS generated
    """,
    """
    INSERT INTO surveys (id, call_id, channel, uniqueid, language, status, started_at,
        finished_at)
    SELECT id, id, caller_channel, caller_uniqueid, 'en',
        CASE WHEN r < 0.85 THEN 'completed' WHEN r < 0.92 THEN 'partial'
             WHEN r < 0.97 THEN 'hung_up' ELSE 'no_answer' END,
        ended_at - interval '50 seconds', ended_at
    FROM (SELECT calls.*, random() AS r FROM calls WHERE id % 6 <> 0) AS surveyed
    """,
    # A score drifts with the agent (a stable quality per agent name), plus noise.
    """
    INSERT INTO answers (survey_id, question, value, attempts, answered_at)
    SELECT s.id, 'agent',
        CASE WHEN s.status = 'no_answer' THEN NULL ELSE
            least(10, greatest(0, round(5 + 5 * ((abs(hashtext(c.agent_name)) % 100) / 100.0)
                + (random() + random() + random() - 1.5) * 4)))::smallint END,
        1, s.started_at + interval '10 seconds'
    FROM surveys AS s JOIN calls AS c ON c.id = s.call_id
    WHERE s.status IN ('completed', 'partial', 'no_answer')
    """,
    """
    INSERT INTO answers (survey_id, question, value, attempts, answered_at)
    SELECT s.id, 'company',
        CASE WHEN s.status = 'no_answer' OR random() < 0.1 THEN NULL ELSE
            least(10, greatest(0, round(7 + (random() + random() + random() - 1.5) * 5)))::smallint
        END,
        1, s.started_at + interval '25 seconds'
    FROM surveys AS s WHERE s.status IN ('completed', 'no_answer')
    """,
    "SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))",
    "SELECT setval(pg_get_serial_sequence('surveys', 'id'), (SELECT max(id) FROM surveys))",
    "SELECT setval(pg_get_serial_sequence('answers', 'id'), (SELECT max(id) FROM answers))",
]

BASELINE = """
SELECT c.agent_name, a.question,
    sum(CASE WHEN a.value >= 9 THEN 1 ELSE 0 END),
    sum(CASE WHEN a.value BETWEEN 7 AND 8 THEN 1 ELSE 0 END),
    sum(CASE WHEN a.value <= 6 THEN 1 ELSE 0 END)
FROM answers AS a JOIN surveys AS s ON s.id = a.survey_id JOIN calls AS c ON c.id = s.call_id
WHERE a.value IS NOT NULL AND s.started_at >= :low AND s.started_at < :high
GROUP BY c.agent_name, a.question
"""


async def autocommit(server: URL, *statements: str) -> None:
    engine = create_engine(server)
    try:
        async with engine.connect() as connection:
            raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await raw.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def surveys_stored(url: URL) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(sa.text("SELECT count(*) FROM surveys"))
            return int(count or 0)
    except sa.exc.DBAPIError:
        return 0
    finally:
        await engine.dispose()


async def load(url: URL, surveys: int, days: int) -> None:
    calls = surveys * 6 // 5
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in LOAD:
                started = time.perf_counter()
                await connection.execute(
                    sa.text(statement),
                    {"calls": calls, "days": days, "agents": AGENTS, "queues": QUEUES},
                )
                first_line = " ".join(statement.split())[:70]
                print(f"  {time.perf_counter() - started:7.1f} s  {first_line}")
    finally:
        await engine.dispose()
    started = time.perf_counter()
    await autocommit(url, "VACUUM ANALYZE")
    print(f"  {time.perf_counter() - started:7.1f} s  VACUUM ANALYZE")


async def timed(call: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    await call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def endpoints(today: date, days: int, cursor: str) -> list[tuple[str, str, dict[str, str]]]:
    """(period label, path, query) of every request timed, 30 and `days` days."""
    year = {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
    month = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    agent = "Agent 042"
    found: list[tuple[str, str, dict[str, str]]] = []
    for label, period in (("30 days", month), (f"{days} days", year)):
        found += [
            (label, "/api/nps", {**period, "group_by": grouping})
            for grouping in ("all", "agent", "queue", "day", "week", "month")
        ]
        found += [
            (label, "/api/nps", {**period, "group_by": "day", "agent": agent}),
            (label, "/api/agent-vs-company", period),
            (label, "/api/champions", period),
            (label, "/api/nps-by-duration", {**period, "measure": "hold"}),
            (label, "/api/nps-by-duration", {**period, "measure": "talk"}),
            (label, "/api/funnel", {**period, "by": "agent"}),
            (label, "/api/funnel", {**period, "by": "queue"}),
            (label, "/api/outliers", period),
            (label, "/api/responses", {**period, "limit": "50"}),
            (label, "/api/responses", {**period, "agent": agent, "limit": "50"}),
            (label, "/api/responses", {**period, "min_score": "0", "max_score": "6"}),
            (
                label,
                "/api/responses",
                {**period, "agent": agent, "question": "agent", "max_score": "0"},
            ),
        ]
    found += [
        (f"{days} days", "/api/responses", {**year, "limit": "50", "cursor": cursor}),
        ("1 day", "/api/responses.csv", {"from": today.isoformat(), "to": today.isoformat()}),
        ("30 days", "/dashboard", month),
        ("30 days", "/dashboard/agents", month),
        ("30 days", "/dashboard/agent", {**month, "name": agent}),
        ("30 days", "/dashboard/queues", month),
        (f"{days} days", "/dashboard", year),
        (f"{days} days", "/dashboard/agents", year),
    ]
    return found


def other_zone(today: date) -> list[tuple[str, str, dict[str, str]]]:
    """Requests in UTC days while the rollups are kept in another zone's."""
    month = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    return [
        ("30 days", "/api/nps", {**month, "group_by": grouping, "tz": "UTC"})
        for grouping in ("all", "day")
    ]


async def baseline(
    engine: AsyncEngine, first: date, last: date, repeat: int, zone: ZoneInfo
) -> list[float]:
    low = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    high = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)

    async def query() -> None:
        async with engine.connect() as connection:
            await connection.execute(sa.text(BASELINE), {"low": low, "high": high})

    return await timed(query, repeat)


async def time_endpoints(
    client: aiohttp.ClientSession,
    requests: list[tuple[str, str, dict[str, str]]],
    baselines: dict[str, list[float]],
    repeat: int,
    *,
    held: bool = True,
) -> bool:
    """Print each request's median, p95 and ratio; False if an API one is too
    slow (only when `held` to the limit)."""
    ok = True
    print(f"\n{'request':<72} {'median':>8} {'p95':>8} {'vs GROUP BY':>12}")
    for label, times in baselines.items():
        name = f"baseline: plain GROUP BY over raw answers, {label}"
        print(f"{name:<72} {statistics.median(times):8.1f} {p95(times):8.1f}")
    for label, path, params in requests:

        async def fetch(path: str = path, params: dict[str, str] = params) -> None:
            async with client.get(path, params=params) as reply:
                await reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"{path} {params}: HTTP {reply.status}")

        times = await timed(fetch, repeat)
        shown = {k: v for k, v in params.items() if k not in ("from", "to", "cursor")}
        if not held:
            shown["(raw)"] = "yes"
        if "cursor" in params:
            shown["page"] = "2"
        name = f"{path} {label} " + " ".join(f"{k}={v}" for k, v in shown.items())
        median = statistics.median(times)
        base = statistics.median(baselines.get(label, baselines["30 days"]))
        api = path.startswith("/api/") and not path.endswith(".csv")
        slow = held and api and p95(times) > LIMIT_MS
        ok = ok and not slow
        print(
            f"{name[:72]:<72} {median:8.1f} {p95(times):8.1f} {median / base:11.3f}x"
            + ("  SLOW" if slow else "")
        )
    return ok


async def build_rollups(engine: AsyncEngine, zone: ZoneInfo) -> SqlReportReader:
    """Rollups from scratch, in UTC days; then, for another zone, the rebuild a
    changed [reports] timezone causes at the next refresh, timed."""
    sessions = session_factory(engine)
    started = time.perf_counter()
    await SqlReportReader(sessions).refresh(full=True)
    print(f"\nrollups built from scratch (UTC days) in {time.perf_counter() - started:.1f} s")
    reader = SqlReportReader(sessions, zone=zone)
    if zone.key != "UTC":
        started = time.perf_counter()
        await reader.refresh()
        print(f"rollups rebuilt for {zone.key} days in {time.perf_counter() - started:.1f} s")
    refreshes = await timed(reader.refresh, 5)
    print(f"a routine refresh (the cut-off's day) takes {statistics.median(refreshes):.0f} ms")
    return reader


async def measure(url: URL, repeat: int, days: int, zone: ZoneInfo) -> bool:
    engine = create_engine(url)
    reader = await build_rollups(engine, zone)
    today = datetime.now(zone).date()
    web = WebConfig(port=0, tokens=f"admin:{TOKEN}")
    server = WebServer(web, reader, FixedMetrics(), refresh_rollups=False)
    await server.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(base_url=server.url, headers=headers) as client:
            first = today - timedelta(days=days - 1)
            params = {"from": first.isoformat(), "to": today.isoformat(), "limit": "50"}
            async with client.get("/api/responses", params=params) as reply:
                cursor = (await reply.json())["next"] or ""
            month = today - timedelta(days=29)
            baselines = {
                "30 days": await baseline(engine, month, today, repeat, zone),
                f"{days} days": await baseline(engine, first, today, repeat, zone),
            }
            print(f"\nreports in {zone.key} days")
            ok = await time_endpoints(client, endpoints(today, days, cursor), baselines, repeat)
            if zone.key != "UTC":
                raw = other_zone(today)
                await time_endpoints(client, raw, baselines, min(repeat, 3), held=False)
            return ok
    finally:
        await server.stop()
        await engine.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--surveys", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument(
        "--timezone", default="UTC", help="[reports] timezone to serve (an IANA name)"
    )
    args = parser.parse_args()
    server = normalize_url(args.server)
    url = server.set(database=DATABASE)
    stored = await surveys_stored(url) if args.reuse else 0
    if stored == 0:
        await autocommit(
            server,
            f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)',
            f'CREATE DATABASE "{DATABASE}"',
        )
        await upgrade(url)
        print(f"loading {args.surveys:,} surveys over {args.days} days into {DATABASE}:")
        started = time.perf_counter()
        await load(url, args.surveys, args.days)
        print(f"  {time.perf_counter() - started:7.1f} s  in all")
    else:
        await upgrade(url)
        # A migration may have rewritten rows (0004 stamps every call's policy
        # decision); until vacuumed, index-only scans fetch the heap for them.
        await autocommit(url, "VACUUM ANALYZE")
        print(f"reusing {DATABASE} with {stored:,} surveys")
    ok = True
    try:
        if not args.load_only:
            ok = await measure(url, args.repeat, args.days, ZoneInfo(args.timezone))
    finally:
        if not args.keep:
            await autocommit(server, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    print("\nevery report endpoint under 300 ms at p95" if ok else "\nsome endpoints are too slow")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
