"""The dashboard's data shaping, as tables: joins per agent and queue, sorting, trend starts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ivr.adapters.web import dashboard_data as data
from ivr.ports import Period


def nps_row(group: str | None, question: str, n: int, nps: float) -> dict[str, Any]:
    return {
        "group": group,
        "question": question,
        "n": n,
        "nps": nps,
        "margin": 10.0,
        "too_few": n < 5,
        "promoters": n,
        "passives": 0,
        "detractors": 0,
    }


def funnel_row(group: str | None, completed: int) -> dict[str, Any]:
    return {
        "group": group,
        "handled": completed * 2,
        "eligible": completed * 2,
        "offered": completed * 2,
        "started": completed,
        "completed": completed,
        "response_rate": 50.0,
        "completion_rate": 50.0,
        "outlier": False,
    }


def test_an_agent_with_calls_but_no_answer_is_listed_with_no_figures() -> None:
    """Dana handled calls nobody answered: she is a row with n = 0 and no NPS, not missing."""
    rows = data.agent_rows(
        [nps_row("Alice", "agent", 8, 50.0), nps_row("Alice", "company", 8, 25.0)],
        [{"agent": "Alice", "gap": 25.0}],
        [funnel_row("Alice", 8), funnel_row("Dana", 0)],
    )

    expected = [("Alice", 8, 50.0, 25.0, 25.0, False), ("Dana", 0, None, None, None, True)]
    assert expected == [
        (row["agent"], row["n"], row["agent_nps"], row["company_nps"], row["gap"], row["too_few"])
        for row in rows
    ]


def test_calls_with_no_agent_are_not_an_agent_row() -> None:
    rows = data.agent_rows([nps_row(None, "agent", 3, 0.0)], [], [funnel_row(None, 3)])

    assert [] == rows


ROWS: list[dict[str, Any]] = [
    {"agent": "bob", "agent_nps": -25.0},
    {"agent": "Alice", "agent_nps": 40.0},
    {"agent": "Erin", "agent_nps": None},
    {"agent": "carol", "agent_nps": -100.0},
    {"agent": "Dave", "agent_nps": 40.0},
]


@pytest.mark.parametrize(
    ("column", "descending", "expected"),
    [
        ("agent_nps", True, ["Dave", "Alice", "bob", "carol", "Erin"]),
        ("agent_nps", False, ["carol", "bob", "Alice", "Dave", "Erin"]),
        ("agent", False, ["Alice", "bob", "carol", "Dave", "Erin"]),
        ("agent", True, ["Erin", "Dave", "carol", "bob", "Alice"]),
    ],
)
def test_sorting_keeps_rows_without_a_value_last_either_way(
    column: str, descending: bool, expected: list[str]
) -> None:
    """Ties sort by name the same way as the column; names ignore case."""
    actual = [row["agent"] for row in data.sort_rows(ROWS, column, descending=descending)]

    assert expected == actual


def test_queues_are_listed_by_name_with_calls_outside_any_queue_last() -> None:
    rows = data.queue_rows(
        [nps_row("sales", "agent", 4, 10.0), nps_row(None, "agent", 2, 0.0)],
        [funnel_row("support", 3), funnel_row("sales", 4)],
    )

    expected = [("sales", 4, 4), ("support", 0, 3), (None, 2, 0)]
    assert expected == [(row["queue"], row["n"], row["completed"]) for row in rows]


@pytest.mark.parametrize(
    ("first", "last", "grouping", "expected"),
    [
        (date(2025, 3, 30), date(2025, 4, 1), "day", ["2025-03-30", "2025-03-31", "2025-04-01"]),
        (date(2025, 3, 5), date(2025, 3, 18), "week", ["2025-03-03", "2025-03-10", "2025-03-17"]),
        (date(2025, 1, 31), date(2025, 3, 1), "month", ["2025-01-01", "2025-02-01", "2025-03-01"]),
    ],
)
def test_trend_starts_cover_the_period_so_gaps_show(
    first: date, last: date, grouping: str, expected: list[str]
) -> None:
    """Weeks start on Monday, months on the first, even before the period does."""
    actual = [start.isoformat() for start in data.trend_starts(Period(first, last), grouping)]

    assert expected == actual


@pytest.mark.parametrize(
    ("days", "expected"), [(1, "day"), (62, "day"), (63, "week"), (400, "week"), (401, "month")]
)
def test_the_trend_groups_by_day_week_or_month_by_the_period_length(
    days: int, expected: str
) -> None:
    first = date(2024, 1, 1)
    period = Period(first, date.fromordinal(first.toordinal() + days - 1))

    assert expected == data.trend_grouping(period)


def test_a_trend_leaves_none_where_nobody_answered() -> None:
    document = {
        "group_by": "day",
        "rows": [nps_row("2025-03-02", "agent", 3, 33.3), nps_row("2025-03-01", "company", 1, 0.0)],
    }

    trend = data.trend(document, Period(date(2025, 3, 1), date(2025, 3, 2)))

    assert {"agent": [None, 33.3], "company": [0.0, None]} == trend.values
