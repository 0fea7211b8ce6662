"""Prometheus text exposition of the service's figures."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.adapters.web import FixedMetrics, LatencyHistogram, create_app
from ivr.adapters.web.metrics import AlertCounts, render
from ivr.ports import LatencySnapshot
from storage.analytics import SqlReportReader
from tests.helpers.web import ADMIN, settings
from tests.web.scenario import NOW


def test_a_histogram_counts_cumulatively_with_sum_and_count() -> None:
    """0.004 s and 0.02 s and 7 s into buckets 0.01/0.1/1: 1, 2, 2, and +Inf 3."""
    histogram = LatencyHistogram(bounds=(0.01, 0.1, 1.0))
    for seconds in (0.004, 0.02, 7.0):
        histogram.observe(seconds)

    assert LatencySnapshot((0.01, 0.1, 1.0), (1, 2, 2), 3, 7.024) == histogram.snapshot()


EXPECTED_LINES = (
    "# HELP ivr_survey_ami_connected 1 while the AMI session (with several PBXs: every one) "
    "is logged in.",
    "# TYPE ivr_survey_ami_connected gauge",
    "ivr_survey_ami_connected 1",
    "# TYPE ivr_survey_pbx_ami_connected gauge",
    'ivr_survey_pbx_ami_connected{pbx="lyon"} 0',
    'ivr_survey_pbx_ami_connected{pbx="paris"} 1',
    "ivr_survey_calls_tracked 12",
    "# TYPE ivr_survey_surveys_finished_total counter",
    'ivr_survey_surveys_finished_total{status="completed"} 40',
    'ivr_survey_surveys_finished_total{status="hung_up"} 3',
    'ivr_survey_surveys_finished_total{status="no_answer"} 0',
    'ivr_survey_surveys_finished_total{status="partial"} 0',
    "ivr_survey_agi_sessions_open 2",
    "# TYPE ivr_survey_spool_depth gauge",
    "ivr_survey_spool_depth 7",
    "# TYPE ivr_survey_db_write_seconds histogram",
    'ivr_survey_db_write_seconds_bucket{le="0.005"} 9',
    'ivr_survey_db_write_seconds_bucket{le="0.05"} 10',
    'ivr_survey_db_write_seconds_bucket{le="+Inf"} 11',
    "ivr_survey_db_write_seconds_sum 0.5",
    "ivr_survey_db_write_seconds_count 11",
    'ivr_survey_alerts_total{outcome="delivered"} 4',
    "ivr_survey_alerts_queued 1",
)


def test_the_exposition_has_every_family_with_help_and_type() -> None:
    """Gauges, a counter per status (zeros included), the write-latency histogram."""
    metrics = FixedMetrics(
        connected=True,
        connected_by_pbx={"paris": True, "lyon": False},
        tracked=12,
        finished={"completed": 40, "hung_up": 3},
        sessions=2,
        spooled=7,
        latency=LatencySnapshot((0.005, 0.05), (9, 10), 11, 0.5),
    )

    lines = render(metrics, AlertCounts(delivered=4, retried=1, queued=1)).splitlines()

    assert [] == [line for line in EXPECTED_LINES if line not in lines]


async def test_metrics_are_served_as_text_exposition(reader: SqlReportReader) -> None:
    """/metrics answers Prometheus's content type, from the ServiceMetrics given."""
    app = create_app(
        settings(),
        reader,
        FixedMetrics(tracked=5),
        today=NOW.date,
        refresh_rollups=False,
    )
    async with (
        TestClient[web.Request, web.Application](TestServer(app)) as client,
        client.get("/metrics", headers=ADMIN) as reply,
    ):
        text = await reply.text()
        content_type = reply.headers["Content-Type"]

    assert ("text/plain; version=0.0.4; charset=utf-8", True) == (
        content_type,
        "ivr_survey_calls_tracked 5\n" in text,
    )
