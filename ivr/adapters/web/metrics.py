"""Prometheus `/metrics`: the service's figures in the text exposition format.

prometheus-client writes the exposition (escaping, counter suffixes, histogram
samples), so this module only says which figures there are. The library's
process-wide default registry, where metrics register on import, is not used:
each scrape builds a `CollectorRegistry` of its own holding one collector that
reads the `ServiceMetrics` port then, so nothing here is module-level state
and two apps in one process (the tests) never see each other's figures.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ivr.core.domain import SurveyStatus
from ivr.ports import LatencySnapshot, ServiceMetrics

# The format `generate_latest` writes. The library's CONTENT_TYPE_LATEST names
# version 1.0.0 (UTF-8 metric names), which none of these names needs.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Database writes are one short transaction each; the interesting range is from
# a millisecond (SQLite on a local disk) to seconds (a PostgreSQL in trouble).
WRITE_BOUNDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class LatencyHistogram:
    """Counts durations into fixed buckets; for the service to time its writes.

    `observe` is O(log buckets) and allocation-free, cheap enough to call on
    every answer written.
    """

    def __init__(self, bounds: Sequence[float] = WRITE_BOUNDS) -> None:
        self._bounds = tuple(sorted(bounds))
        self._counts = [0] * len(self._bounds)
        self._count = 0
        self._total = 0.0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self._bounds, seconds)
        if index < len(self._counts):
            self._counts[index] += 1
        self._count += 1
        self._total += seconds

    def snapshot(self) -> LatencySnapshot:
        cumulative = []
        running = 0
        for count in self._counts:
            running += count
            cumulative.append(running)
        return LatencySnapshot(
            bounds=self._bounds,
            bucket_counts=tuple(cumulative),
            count=self._count,
            total_seconds=self._total,
        )


@dataclass(frozen=True, slots=True)
class FixedMetrics:
    """`ServiceMetrics` with given values, for serving reports without a running
    service (the benchmark, `ivr-survey` tools, tests)."""

    connected: bool = False
    connected_by_pbx: Mapping[str, bool] = field(default_factory=dict)
    tracked: int = 0
    finished: Mapping[str, int] = field(default_factory=dict)
    sessions: int = 0
    refused: Mapping[str, int] = field(default_factory=dict)
    spooled: int = 0
    held: int = 0
    lost: int = 0
    down: bool = False
    latency: LatencySnapshot = field(
        default_factory=lambda: LatencySnapshot(
            bounds=WRITE_BOUNDS, bucket_counts=(0,) * len(WRITE_BOUNDS), count=0, total_seconds=0.0
        )
    )

    def ami_connected(self) -> bool:
        return self.connected

    def ami_connected_by_pbx(self) -> Mapping[str, bool]:
        return self.connected_by_pbx

    def calls_tracked(self) -> int:
        return self.tracked

    def surveys_by_status(self) -> Mapping[str, int]:
        return self.finished

    def agi_sessions_open(self) -> int:
        return self.sessions

    def agi_connections_refused(self) -> Mapping[str, int]:
        return self.refused

    def db_write_latency(self) -> LatencySnapshot:
        return self.latency

    def spool_depth(self) -> int:
        return self.spooled

    def writes_held(self) -> int:
        return self.held

    def writes_lost(self) -> int:
        return self.lost

    def database_down(self) -> bool:
        return self.down


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """What the detractor alert sender has done since start-up."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    queued: int = 0


AGI_REFUSAL_REASONS = (
    "address",
    "max_sessions",
    "no_header",
    "evicted",
    "bad_key",
    "unknown_call",
)


def health_problems(metrics: ServiceMetrics) -> list[str]:
    """What `/healthz` reports as degrading the service, in words for an operator."""
    problems = []
    held, lost = metrics.writes_held(), metrics.writes_lost()
    if held:
        problems.append(
            f"neither the database nor the spool can take writes: {held} held in memory"
        )
    elif metrics.database_down():
        problems.append(
            f"the database cannot take writes: {metrics.spool_depth()} wait in the spool"
        )
    if lost:
        problems.append(f"{lost} writes lost since start-up: the memory hold was full")
    return problems


def _bound(value: float) -> str:
    """A bucket's `le` as it has always been written ("1", "2.5", "+Inf"): the
    library's own form ("1.0") would start new series for the whole buckets."""
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _by_label(
    family: GaugeMetricFamily | CounterMetricFamily, values: Iterable[tuple[str, float]]
) -> Metric:
    for label, value in values:
        family.add_metric([label], value)
    return family


def _calls_and_sessions(metrics: ServiceMetrics) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "ivr_survey_ami_connected",
        "1 while the AMI session (with several PBXs: every one) is logged in.",
        value=1 if metrics.ami_connected() else 0,
    )
    yield _by_label(
        GaugeMetricFamily(
            "ivr_survey_pbx_ami_connected",
            "1 while this PBX's AMI session is logged in.",
            labels=["pbx"],
        ),
        ((name, 1 if up else 0) for name, up in sorted(metrics.ami_connected_by_pbx().items())),
    )
    yield GaugeMetricFamily(
        "ivr_survey_calls_tracked",
        "Calls the AMI tracker holds in memory.",
        value=metrics.calls_tracked(),
    )
    finished = dict(metrics.surveys_by_status())
    for status in SurveyStatus:
        if status is not SurveyStatus.IN_PROGRESS:
            finished.setdefault(status.value, 0)
    yield _by_label(
        CounterMetricFamily(
            "ivr_survey_surveys_finished_total",
            "Surveys finished since start-up, by where they stopped.",
            labels=["status"],
        ),
        sorted(finished.items()),
    )
    yield GaugeMetricFamily(
        "ivr_survey_agi_sessions_open",
        "FastAGI sessions running now.",
        value=metrics.agi_sessions_open(),
    )
    refused = dict.fromkeys(AGI_REFUSAL_REASONS, 0) | dict(metrics.agi_connections_refused())
    yield _by_label(
        CounterMetricFamily(
            "ivr_survey_agi_connections_refused_total",
            "FastAGI connections closed before any survey, by reason: address not allowed, "
            "max_sessions reached, no header in time, closed to admit a newer one, no matching "
            "key= argument, or a Linkedid AMI never saw.",
            labels=["reason"],
        ),
        sorted(refused.items()),
    )


def _writes(metrics: ServiceMetrics) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "ivr_survey_spool_depth",
        "Writes waiting in the local spool while the database is unreachable.",
        value=metrics.spool_depth(),
    )
    yield GaugeMetricFamily(
        "ivr_survey_database_down",
        "1 while the database cannot take writes and they go to the spool.",
        value=int(metrics.database_down()),
    )
    yield GaugeMetricFamily(
        "ivr_survey_writes_held",
        "Writes held in memory because neither the database nor the spool can take them.",
        value=metrics.writes_held(),
    )
    yield CounterMetricFamily(
        "ivr_survey_writes_lost_total",
        "Writes lost because the database, the spool and the memory hold were all full.",
        value=metrics.writes_lost(),
    )
    latency = metrics.db_write_latency()
    buckets: list[tuple[str, float]] = [
        (_bound(bound), count)
        for bound, count in zip(latency.bounds, latency.bucket_counts, strict=True)
    ]
    buckets.append(("+Inf", latency.count))
    yield HistogramMetricFamily(
        "ivr_survey_db_write_seconds",
        "Duration of each database write transaction.",
        buckets=buckets,
        sum_value=latency.total_seconds,
    )


def _alerts(alerts: AlertCounts) -> Iterator[Metric]:
    yield _by_label(
        CounterMetricFamily(
            "ivr_survey_alerts_total",
            "Detractor webhooks by outcome (retried counts attempts after the first).",
            labels=["outcome"],
        ),
        [
            ("delivered", alerts.delivered),
            ("retried", alerts.retried),
            ("failed", alerts.failed),
            ("dropped", alerts.dropped),
        ],
    )
    yield GaugeMetricFamily(
        "ivr_survey_alerts_queued", "Detractor webhooks waiting to be sent.", value=alerts.queued
    )


def _web(
    login_refusals: Mapping[str, int] | None, connections: tuple[int, Mapping[str, int]] | None
) -> Iterator[Metric]:
    if login_refusals is not None:
        yield _by_label(
            CounterMetricFamily(
                "ivr_survey_web_logins_refused_total",
                "Dashboard sign-ins refused before the password was checked, by reason "
                "(address or user: too many failures; busy: one check at a time per address).",
                labels=["reason"],
            ),
            sorted(login_refusals.items()),
        )
    if connections is not None:
        open_now, closed = connections
        yield GaugeMetricFamily(
            "ivr_survey_web_connections_open", "HTTP connections open now.", value=open_now
        )
        yield _by_label(
            CounterMetricFamily(
                "ivr_survey_web_connections_refused_total",
                "HTTP connections closed by the server's bounds, by reason "
                "(max_connections: at the cap; header_timeout: headers too slow).",
                labels=["reason"],
            ),
            sorted(closed.items()),
        )


@dataclass(frozen=True, slots=True, eq=False)
class _Scrape(Collector):
    """What one scrape reports: the port, read when the registry collects.

    Compared by identity (`eq=False`): the registry keys its collectors by hash.
    """

    metrics: ServiceMetrics
    alerts: AlertCounts | None
    login_refusals: Mapping[str, int] | None
    web_connections: tuple[int, Mapping[str, int]] | None

    def collect(self) -> Iterator[Metric]:
        yield from _calls_and_sessions(self.metrics)
        yield from _writes(self.metrics)
        if self.alerts is not None:
            yield from _alerts(self.alerts)
        yield from _web(self.login_refusals, self.web_connections)


def render(
    metrics: ServiceMetrics,
    alerts: AlertCounts | None = None,
    *,
    login_refusals: Mapping[str, int] | None = None,
    web_connections: tuple[int, Mapping[str, int]] | None = None,
) -> str:
    """The exposition text, one family per metric, ending with a newline."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(metrics, alerts, login_refusals, web_connections))
    return generate_latest(registry).decode("utf-8")
