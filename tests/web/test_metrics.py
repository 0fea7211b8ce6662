"""Prometheus text exposition of the service's figures."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

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


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels: what a scraper stores."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


EXPECTED_SAMPLES = {
    ("ivr_survey_ami_connected", ()): 1,
    ("ivr_survey_pbx_ami_connected", (("pbx", "lyon"),)): 0,
    ("ivr_survey_pbx_ami_connected", (("pbx", "paris"),)): 1,
    ("ivr_survey_calls_tracked", ()): 12,
    ("ivr_survey_surveys_finished_total", (("status", "completed"),)): 40,
    ("ivr_survey_surveys_finished_total", (("status", "hung_up"),)): 3,
    ("ivr_survey_surveys_finished_total", (("status", "no_answer"),)): 0,
    ("ivr_survey_surveys_finished_total", (("status", "partial"),)): 0,
    ("ivr_survey_agi_sessions_open", ()): 2,
    ("ivr_survey_spool_depth", ()): 7,
    ("ivr_survey_db_write_seconds_bucket", (("le", "0.005"),)): 9,
    ("ivr_survey_db_write_seconds_bucket", (("le", "0.05"),)): 10,
    ("ivr_survey_db_write_seconds_bucket", (("le", "+Inf"),)): 11,
    ("ivr_survey_db_write_seconds_sum", ()): 0.5,
    ("ivr_survey_db_write_seconds_count", ()): 11,
    ("ivr_survey_alerts_total", (("outcome", "delivered"),)): 4,
    ("ivr_survey_alerts_queued", ()): 1,
}

EXPECTED_HEADERS = (
    "# HELP ivr_survey_ami_connected 1 while the AMI session (with several PBXs: every one) "
    "is logged in.",
    "# TYPE ivr_survey_ami_connected gauge",
    "# TYPE ivr_survey_pbx_ami_connected gauge",
    "# TYPE ivr_survey_surveys_finished_total counter",
    "# TYPE ivr_survey_spool_depth gauge",
    "# TYPE ivr_survey_db_write_seconds histogram",
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

    text = render(metrics, AlertCounts(delivered=4, retried=1, queued=1))

    found = samples(text)
    assert (EXPECTED_SAMPLES, []) == (
        {key: found.get(key) for key in EXPECTED_SAMPLES},
        [line for line in EXPECTED_HEADERS if line not in text.splitlines()],
    )


def test_counters_keep_their_names_and_no_created_samples_are_added() -> None:
    """`_total` is part of each counter's sample name, as before the library wrote
    the text; no `_created` sample appears, and a family without samples (no PBX
    named) still has its HELP and TYPE."""
    text = render(FixedMetrics(lost=2), AlertCounts(), login_refusals={"user": 1})

    found, lines = samples(text), text.splitlines()
    assert ([], True, 2.0, 1.0, True) == (
        [name for name, _ in found if name.endswith("_created")],
        "# TYPE ivr_survey_writes_lost_total counter" in lines,
        found[("ivr_survey_writes_lost_total", ())],
        found[("ivr_survey_web_logins_refused_total", (("reason", "user"),))],
        "# TYPE ivr_survey_pbx_ami_connected gauge" in lines,
    )


def test_bucket_bounds_are_written_as_before() -> None:
    """`le` is a label: "1" and "1.0" would be two series, so the write-latency
    buckets keep the form they were first scraped with."""
    text = render(FixedMetrics())

    bounds = [
        dict(labels)["le"]
        for name, labels in samples(text)
        if name == "ivr_survey_db_write_seconds_bucket"
    ]
    expected = [
        "0.001",
        "0.0025",
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1",
        "2.5",
        "5",
        "+Inf",
    ]
    assert expected == bounds


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

    assert ("text/plain; version=0.0.4; charset=utf-8", 5.0) == (
        content_type,
        samples(text)[("ivr_survey_calls_tracked", ())],
    )
