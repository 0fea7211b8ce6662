"""NPS margins, rates and the outlier rule, as plain tables of numbers."""

from __future__ import annotations

import pytest

from ivr.adapters.web.stats import find_outliers, margin_of_error, one_decimal
from ivr.core.nps import NpsSummary
from ivr.ports import CellNps, FunnelCounts


def summary(promoters: int, passives: int, detractors: int) -> NpsSummary:
    return NpsSummary(promoters=promoters, passives=passives, detractors=detractors)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # p=.5 d=.2: var=(.7-.09)/10=.061 -> 1.96*.24698*100
        pytest.param((5, 3, 2), 48.4, id="mixed-10"),
        # p=.25 d=.25: var=.5/100 -> 1.96*.070711*100
        pytest.param((25, 50, 25), 13.9, id="balanced-100"),
        # everyone a promoter: no spread at all
        pytest.param((7, 0, 0), 0.0, id="unanimous"),
        # one promoter, one detractor: var=1, sqrt(1/2)
        pytest.param((1, 0, 1), 138.6, id="split-2"),
        pytest.param((0, 0, 0), None, id="nobody"),
    ],
)
def test_margin_of_error_is_the_standard_nps_formula(
    counts: tuple[int, int, int], expected: float | None
) -> None:
    """MOE = 1.96 * sqrt((p_prom + p_det - (p_prom - p_det)^2) / n) * 100."""
    assert expected == one_decimal(margin_of_error(summary(*counts)))


def funnel(agent: str, eligible: int, completed: int, queue: str = "sales") -> FunnelCounts:
    return FunnelCounts(agent, queue, eligible, eligible, completed, completed, completed)


def test_a_completion_rate_far_above_the_queue_is_flagged() -> None:
    """90/100 against the rest's 200/400: pooled .58, z = .4 / sqrt(.58 * .42 *
    (1/100 + 1/400)) = 7.25. Each 50/100 agent against the rest (240/400): z = -1.81."""
    rows = [funnel("Gamer", 100, 90)] + [funnel(name, 100, 50) for name in ("A", "B", "C", "D")]

    found = find_outliers(rows, [], min_n=30, z_limit=2.0)

    assert [("Gamer", "completion_rate", 90.0, 50.0, 7.25)] == [
        (item.agent, item.metric, item.value, item.rest_value, round(item.z, 2)) for item in found
    ]


def test_agents_under_min_n_are_never_flagged() -> None:
    """10/10 against 50/200 would be z > 5, but 10 eligible calls are below min_n."""
    rows = [funnel("New", 10, 10), funnel("Ann", 100, 25), funnel("Ben", 100, 25)]

    assert [] == find_outliers(rows, [], min_n=30, z_limit=2.0)


def test_an_nps_far_from_the_rest_of_the_queue_is_flagged_per_queue() -> None:
    """Queue a: 40 promoters of 40 (mean 1, variance 0) against five agents of
    20/20/20 (mean 0, variance 2/3, n 300): z = 1 / sqrt((2/3)/300) = 21.21. Each
    of the five against the rest (mean .143): z = -1.23. Queue b is compared apart."""
    cells = [
        CellNps("Star", "a", "agent", summary(40, 0, 0)),
        *(CellNps(name, "a", "agent", summary(20, 20, 20)) for name in ("A", "B", "C", "D", "E")),
        CellNps("Star", "b", "agent", summary(10, 10, 10)),
        CellNps("Ben", "b", "agent", summary(10, 10, 10)),
        CellNps("Star", "a", "company", summary(0, 0, 40)),
    ]

    found = find_outliers([], cells, min_n=30, z_limit=2.0)

    assert [("Star", "a", "nps", 100.0, 0.0, 21.21)] == [
        (item.agent, item.queue, item.metric, item.value, item.rest_value, round(item.z, 2))
        for item in found
    ]
