"""Prometheus `/metrics`: the text exposition format, written by hand.

A client library would bring a process-wide registry (module-level mutable
state, registration on import); the handful of series here are rendered from
the `ServiceMetrics` port on each scrape instead.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ivr.core.domain import SurveyStatus
from ivr.ports import LatencySnapshot, ServiceMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {_number(value)}" for labels, value in samples]
    return lines


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


def render(
    metrics: ServiceMetrics,
    alerts: AlertCounts | None = None,
    *,
    login_refusals: Mapping[str, int] | None = None,
    web_connections: tuple[int, Mapping[str, int]] | None = None,
) -> str:
    """The exposition text, one family per metric, ending with a newline."""
    finished = dict(metrics.surveys_by_status())
    for status in SurveyStatus:
        if status is not SurveyStatus.IN_PROGRESS:
            finished.setdefault(status.value, 0)
    latency = metrics.db_write_latency()
    lines = _family(
        "ivr_survey_ami_connected",
        "gauge",
        "1 while the AMI session (with several PBXs: every one) is logged in.",
        [("", 1 if metrics.ami_connected() else 0)],
    )
    lines += _family(
        "ivr_survey_pbx_ami_connected",
        "gauge",
        "1 while this PBX's AMI session is logged in.",
        [
            (f'{{pbx="{_escape(name)}"}}', 1 if connected else 0)
            for name, connected in sorted(metrics.ami_connected_by_pbx().items())
        ],
    )
    lines += _family(
        "ivr_survey_calls_tracked",
        "gauge",
        "Calls the AMI tracker holds in memory.",
        [("", metrics.calls_tracked())],
    )
    lines += _family(
        "ivr_survey_surveys_finished_total",
        "counter",
        "Surveys finished since start-up, by where they stopped.",
        [(f'{{status="{_escape(status)}"}}', count) for status, count in sorted(finished.items())],
    )
    lines += _family(
        "ivr_survey_agi_sessions_open",
        "gauge",
        "FastAGI sessions running now.",
        [("", metrics.agi_sessions_open())],
    )
    refused = dict.fromkeys(AGI_REFUSAL_REASONS, 0) | dict(metrics.agi_connections_refused())
    lines += _family(
        "ivr_survey_agi_connections_refused_total",
        "counter",
        "FastAGI connections closed before any survey, by reason: address not allowed, "
        "max_sessions reached, no header in time, closed to admit a newer one, no matching "
        "key= argument, or a Linkedid AMI never saw.",
        [(f'{{reason="{_escape(reason)}"}}', count) for reason, count in sorted(refused.items())],
    )
    lines += _family(
        "ivr_survey_spool_depth",
        "gauge",
        "Writes waiting in the local spool while the database is unreachable.",
        [("", metrics.spool_depth())],
    )
    lines += _family(
        "ivr_survey_database_down",
        "gauge",
        "1 while the database cannot take writes and they go to the spool.",
        [("", int(metrics.database_down()))],
    )
    lines += _family(
        "ivr_survey_writes_held",
        "gauge",
        "Writes held in memory because neither the database nor the spool can take them.",
        [("", metrics.writes_held())],
    )
    lines += _family(
        "ivr_survey_writes_lost_total",
        "counter",
        "Writes lost because the database, the spool and the memory hold were all full.",
        [("", metrics.writes_lost())],
    )
    buckets = [
        (f'{{le="{_number(bound)}"}}', count)
        for bound, count in zip(latency.bounds, latency.bucket_counts, strict=True)
    ]
    buckets.append(('{le="+Inf"}', latency.count))
    lines += [
        "# HELP ivr_survey_db_write_seconds Duration of each database write transaction.",
        "# TYPE ivr_survey_db_write_seconds histogram",
        *(f"ivr_survey_db_write_seconds_bucket{labels} {count}" for labels, count in buckets),
        f"ivr_survey_db_write_seconds_sum {_number(latency.total_seconds)}",
        f"ivr_survey_db_write_seconds_count {latency.count}",
    ]
    if alerts is not None:
        lines += _family(
            "ivr_survey_alerts_total",
            "counter",
            "Detractor webhooks by outcome (retried counts attempts after the first).",
            [
                ('{outcome="delivered"}', alerts.delivered),
                ('{outcome="retried"}', alerts.retried),
                ('{outcome="failed"}', alerts.failed),
                ('{outcome="dropped"}', alerts.dropped),
            ],
        )
        lines += _family(
            "ivr_survey_alerts_queued",
            "gauge",
            "Detractor webhooks waiting to be sent.",
            [("", alerts.queued)],
        )
    if login_refusals is not None:
        lines += _family(
            "ivr_survey_web_logins_refused_total",
            "counter",
            "Dashboard sign-ins refused before the password was checked, by reason "
            "(address or user: too many failures; busy: one check at a time per address).",
            [
                (f'{{reason="{_escape(reason)}"}}', count)
                for reason, count in sorted(login_refusals.items())
            ],
        )
    if web_connections is not None:
        open_now, closed = web_connections
        lines += _family(
            "ivr_survey_web_connections_open",
            "gauge",
            "HTTP connections open now.",
            [("", open_now)],
        )
        lines += _family(
            "ivr_survey_web_connections_refused_total",
            "counter",
            "HTTP connections closed by the server's bounds, by reason "
            "(max_connections: at the cap; header_timeout: headers too slow).",
            [
                (f'{{reason="{_escape(reason)}"}}', count)
                for reason, count in sorted(closed.items())
            ],
        )
    return "\n".join(lines) + "\n"
