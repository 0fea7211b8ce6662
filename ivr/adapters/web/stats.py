"""The statistics the reports add on top of NPS counts: margins, rates, outliers.

Pure functions over the port's value types, so the arithmetic a manager acts on
is tested with plain numbers, and the API and the dashboard (which both call
these) cannot show different figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ivr.adapters.i18n import N_
from ivr.core.nps import NpsSummary
from ivr.ports import CellNps, FunnelCounts

# 95% two-sided normal quantile.
Z_95 = 1.96
AGENT_QUESTION = "agent"


def proportions(summary: NpsSummary) -> tuple[float, float]:
    """(share of promoters, share of detractors); (0, 0) when nobody answered."""
    if summary.n == 0:
        return 0.0, 0.0
    return summary.promoters / summary.n, summary.detractors / summary.n


def variance(summary: NpsSummary) -> float:
    """Variance of one answer scored +1 (promoter), 0, -1 (detractor).

    NPS/100 is the mean of that score, so its variance is
    p_prom + p_det - (p_prom - p_det)^2, the standard NPS variance.
    """
    promoters, detractors = proportions(summary)
    return max(0.0, promoters + detractors - (promoters - detractors) ** 2)


def margin_of_error(summary: NpsSummary) -> float | None:
    """The 95% margin of error of the NPS, in NPS points (None when n is 0).

    1.96 * sqrt(variance / n) * 100: an NPS of 30 with a margin of 12 means the
    true NPS is between 18 and 42 with 95% confidence.
    """
    if summary.n == 0:
        return None
    return Z_95 * math.sqrt(variance(summary) / summary.n) * 100.0


def one_decimal(value: float | None) -> float | None:
    """Reports show NPS, margins and rates to one decimal, as managers read them."""
    return None if value is None else round(value, 1)


def percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def add_summaries(summaries: Iterable[NpsSummary]) -> NpsSummary:
    promoters = passives = detractors = 0
    for summary in summaries:
        promoters += summary.promoters
        passives += summary.passives
        detractors += summary.detractors
    return NpsSummary(promoters=promoters, passives=passives, detractors=detractors)


def add_funnels(
    counts: Iterable[FunnelCounts], *, agent: str | None, queue: str | None
) -> FunnelCounts:
    """The sum of several funnel rows, labelled with the given agent and queue."""
    totals = [0, 0, 0, 0, 0]
    for row in counts:
        for index, value in enumerate(
            (row.handled, row.eligible, row.offered, row.started, row.completed)
        ):
            totals[index] += value
    return FunnelCounts(agent, queue, *totals)


def completion_rate(row: FunnelCounts) -> float | None:
    """Completed surveys per eligible call, in percent."""
    return percent(row.completed, row.eligible)


def response_rate(row: FunnelCounts) -> float | None:
    """Completed surveys per survey offered, in percent."""
    return percent(row.completed, row.offered)


@dataclass(frozen=True, slots=True)
class Outlier:
    """One agent whose figure in one queue stands out from the rest of that queue.

    `value` and `rest_value` are the agent's and the rest of the queue's
    completion rate (percent) or agent-question NPS; `n` and `rest_n` the
    eligible calls or answers each is computed from.
    """

    agent: str
    queue: str | None
    metric: str
    value: float
    rest_value: float
    n: int
    rest_n: int
    z: float


OUTLIER_RULE = N_(
    "Each agent is compared with the rest of the same queue (the queue without that "
    "agent). Completion rate (completed surveys per eligible call): two-proportion "
    "z-test, z = (p_agent - p_rest) / sqrt(p(1-p)(1/n_agent + 1/n_rest)) with p the "
    "pooled rate. Agent-question NPS: each answer scored +1/0/-1, z = (mean_agent - "
    "mean_rest) / sqrt(var_agent/n_agent + var_rest/n_rest). Flagged when |z| > "
    "outlier_z (2 unless configured) and both sides have at least min_n eligible calls "
    "or answers. A high completion rate with a high score is the pattern of an agent "
    "who sends only happy callers to the survey."
)
"""Said with every outlier list; the JSON keeps it in English, the dashboard translates it."""


def _proportion_z(hits: int, n: int, rest_hits: int, rest_n: int) -> float | None:
    pooled = (hits + rest_hits) / (n + rest_n)
    spread = pooled * (1 - pooled) * (1 / n + 1 / rest_n)
    if spread <= 0:
        return None
    return (hits / n - rest_hits / rest_n) / math.sqrt(spread)


def _mean(summary: NpsSummary) -> float:
    """The mean answer scored +1/0/-1, i.e. NPS / 100 (0 when nobody answered)."""
    promoters, detractors = proportions(summary)
    return promoters - detractors


def _nps_z(agent: NpsSummary, rest: NpsSummary) -> float | None:
    spread = variance(agent) / agent.n + variance(rest) / rest.n
    if spread <= 0:
        return None
    return (_mean(agent) - _mean(rest)) / math.sqrt(spread)


def _completion_outliers(
    funnel: Sequence[FunnelCounts], *, min_n: int, z_limit: float
) -> Iterator[Outlier]:
    by_queue: dict[str | None, list[FunnelCounts]] = {}
    for row in funnel:
        if row.agent is not None:
            by_queue.setdefault(row.queue, []).append(row)
    for queue, rows in by_queue.items():
        total_eligible = sum(row.eligible for row in rows)
        total_completed = sum(min(row.completed, row.eligible) for row in rows)
        for row in rows:
            assert row.agent is not None
            completed = min(row.completed, row.eligible)
            rest_n = total_eligible - row.eligible
            rest_hits = total_completed - completed
            if row.eligible < min_n or rest_n < min_n:
                continue
            z = _proportion_z(completed, row.eligible, rest_hits, rest_n)
            if z is not None and abs(z) > z_limit:
                yield Outlier(
                    agent=row.agent,
                    queue=queue,
                    metric="completion_rate",
                    value=100.0 * completed / row.eligible,
                    rest_value=100.0 * rest_hits / rest_n,
                    n=row.eligible,
                    rest_n=rest_n,
                    z=z,
                )


def _nps_outliers(cells: Sequence[CellNps], *, min_n: int, z_limit: float) -> Iterator[Outlier]:
    scores: dict[str | None, list[CellNps]] = {}
    for cell in cells:
        if cell.agent is not None and cell.question == AGENT_QUESTION:
            scores.setdefault(cell.queue, []).append(cell)
    for queue, queue_cells in scores.items():
        total = add_summaries(cell.summary for cell in queue_cells)
        for cell in queue_cells:
            assert cell.agent is not None
            agent = cell.summary
            rest = NpsSummary(
                promoters=total.promoters - agent.promoters,
                passives=total.passives - agent.passives,
                detractors=total.detractors - agent.detractors,
            )
            if agent.n < min_n or rest.n < min_n:
                continue
            z = _nps_z(agent, rest)
            if z is not None and abs(z) > z_limit:
                yield Outlier(
                    agent=cell.agent,
                    queue=queue,
                    metric="nps",
                    value=100.0 * _mean(agent),
                    rest_value=100.0 * _mean(rest),
                    n=agent.n,
                    rest_n=rest.n,
                    z=z,
                )


def find_outliers(
    funnel: Sequence[FunnelCounts],
    cells: Sequence[CellNps],
    *,
    min_n: int,
    z_limit: float,
) -> list[Outlier]:
    """Agents whose completion rate or agent-question NPS is an outlier in a queue."""
    found = [
        *_completion_outliers(funnel, min_n=min_n, z_limit=z_limit),
        *_nps_outliers(cells, min_n=min_n, z_limit=z_limit),
    ]
    found.sort(key=lambda outlier: (outlier.agent, outlier.queue or "", outlier.metric))
    return found
