"""The JSON API over the hand-worked history, on SQLite and PostgreSQL.

Expected figures are computed by hand from tests/web/scenario.py; the comment
above each assertion shows the arithmetic. NPS and margins have one decimal.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.helpers.web import ADMIN, MARCH, VIEWER
from tests.web.scenario import FORMULA_NAME

Client = TestClient[web.Request, web.Application]


async def get(client: Client, path: str, **params: str) -> Any:
    async with client.get(path, params=params, headers=ADMIN) as reply:
        assert 200 == reply.status, await reply.text()
        return await reply.json()


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["n"],
        row["promoters"],
        row["passives"],
        row["detractors"],
        row["nps"],
        row["margin"],
        row["too_few"],
    )


async def test_nps_for_the_whole_period_matches_the_hand_computation(client: Client) -> None:
    """Agent: 10,9,9,7,6,8,3,0,10,5 -> 4 promoters, 2 passives, 4 detractors, NPS 0,
    margin 1.96*sqrt((.4+.4-0)/10)*100 = 55.4. Company: 9,5,3,10,8,2,10,9 -> 4/1/3,
    NPS 12.5, margin 1.96*sqrt((.5+.375-.125^2)/8)*100 = 64.2. Unanswered is not 0."""
    document = await get(client, "/api/nps", group_by="all", **MARCH)

    actual = {row["question"]: figures(row) for row in document["rows"]}

    assert {
        "agent": (10, 4, 2, 4, 0.0, 55.4, False),
        "company": (8, 4, 1, 3, 12.5, 64.2, False),
    } == actual


async def test_nps_by_agent_flags_groups_under_min_n(client: Client) -> None:
    """Alice 10,9,9,7,6: NPS 40, margin 1.96*sqrt((.6+.2-.16)/5)*100 = 70.1.
    Bob 8,3,0,10: -25, margin 1.96*sqrt((.25+.5-.25^2)/4)*100 = 81.3.
    Carol 5: -100 with margin 0, and n=1 < min_n=3 is flagged."""
    document = await get(client, "/api/nps", group_by="agent", question="agent", **MARCH)

    actual = [(row["group"], *figures(row)) for row in document["rows"]]

    assert [
        ("Alice", 5, 3, 1, 1, 40.0, 70.1, False),
        ("Bob", 4, 1, 1, 2, -25.0, 81.3, False),
        ("Carol", 1, 0, 0, 1, -100.0, 0.0, True),
    ] == actual


async def test_nps_by_queue(client: Client) -> None:
    """sales: 10,9,9,7,6,8,3,0 -> 3/2/3, NPS 0. support: 10,5 -> 1/0/1, NPS 0."""
    document = await get(client, "/api/nps", group_by="queue", question="agent", **MARCH)

    actual = [(row["group"], row["n"], row["nps"]) for row in document["rows"]]

    assert [("sales", 8, 0.0), ("support", 2, 0.0)] == actual


async def test_nps_by_day_week_and_month_name_each_group_by_its_first_day(client: Client) -> None:
    """Days: Mar 3 10,9,8 -> 66.7; Mar 4 9,7,10 -> 66.7; Mar 5 3 -> -100;
    Mar 10 6,0 -> -100; Mar 11 5 -> -100. Weeks: from Mar 3, 4 of 7 promoters and
    1 detractor -> 42.9; from Mar 10 -> -100. Month: all ten -> 0."""
    by = {}
    for grouping in ("day", "week", "month"):
        document = await get(client, "/api/nps", group_by=grouping, question="agent", **MARCH)
        by[grouping] = [(row["group"], row["n"], row["nps"]) for row in document["rows"]]

    assert {
        "day": [
            ("2025-03-03", 3, 66.7),
            ("2025-03-04", 3, 66.7),
            ("2025-03-05", 1, -100.0),
            ("2025-03-10", 2, -100.0),
            ("2025-03-11", 1, -100.0),
        ],
        "week": [("2025-03-03", 7, 42.9), ("2025-03-10", 3, -100.0)],
        "month": [("2025-03-01", 10, 0.0)],
    } == by


async def test_nps_filters_by_agent_and_queue(client: Client) -> None:
    """Bob in sales only: 8,3,0 -> 0/1/2, NPS -66.7."""
    document = await get(
        client, "/api/nps", group_by="all", question="agent", agent="Bob", queue="sales", **MARCH
    )

    assert [(3, -66.7)] == [(row["n"], row["nps"]) for row in document["rows"]]


async def test_agent_versus_company_compares_the_same_calls(client: Client) -> None:
    """Only surveys with both answers: Alice 1,2,4,5 -> agent 10,9,7,6 = 25,
    company 9,5,3,10 = 0, gap 25. Bob 6,7,9 -> 8,3,10 = 0 and 8,2,10 = 0.
    Carol 11 -> 5 = -100 and 9 = 100, gap -200."""
    document = await get(client, "/api/agent-vs-company", **MARCH)

    actual = [
        (
            row["agent"],
            row["n"],
            row["agent_question"]["nps"],
            row["company_question"]["nps"],
            row["gap"],
            row["too_few"],
        )
        for row in document["rows"]
    ]

    assert [
        ("Alice", 4, 25.0, 0.0, 25.0, False),
        ("Bob", 3, 0.0, 0.0, 0.0, False),
        ("Carol", 1, -100.0, 100.0, -200.0, True),
    ] == actual


async def test_champions_rank_agents_with_enough_answers(client: Client) -> None:
    """min_n 3 leaves Alice (40) and Bob (-25); Carol's single answer is out."""
    document = await get(client, "/api/champions", n="1", **MARCH)

    assert (["Alice"], ["Bob"]) == (
        [row["agent"] for row in document["top"]],
        [row["agent"] for row in document["bottom"]],
    )


async def test_with_few_agents_nobody_is_both_top_and_bottom(client: Client) -> None:
    """Two ranked agents and n=5: Alice is top, Bob is bottom, neither is listed twice."""
    document = await get(client, "/api/champions", n="5", **MARCH)

    assert (["Alice"], ["Bob"]) == (
        [row["agent"] for row in document["top"]],
        [row["agent"] for row in document["bottom"]],
    )


async def test_nps_by_hold_time_buckets(client: Client) -> None:
    """Agent scores by hold: <30 s 10,8,10 -> 66.7; 30-60 9 -> 100; 60-120 9,5 -> 0;
    120-300 7 -> 0; 300-600 3 -> -100; 600+ 6 -> -100; unknown 0 -> -100."""
    document = await get(client, "/api/nps-by-duration", measure="hold", question="agent", **MARCH)

    actual = [
        (row["label"], row["low"], row["high"], row["n"], row["nps"]) for row in document["rows"]
    ]

    assert [
        ("0-30 s", 0, 30, 3, 66.7),
        ("30-60 s", 30, 60, 1, 100.0),
        ("60-120 s", 60, 120, 2, 0.0),
        ("120-300 s", 120, 300, 1, 0.0),
        ("300-600 s", 300, 600, 1, -100.0),
        ("600+ s", 600, None, 1, -100.0),
        ("unknown", None, None, 1, -100.0),
    ] == actual


async def test_funnel_per_agent(client: Client) -> None:
    """Alice: 6 handled and eligible, 5 surveys, 5 completed (the partial counts):
    response 100%, completion 5/6. Bob: 4/4/4/4. Carol: 3 handled, one ended by the
    caller -> 2 eligible, 2 surveys, one hung up -> 1 completed. The abandoned call
    has no agent and handled nothing, so it makes no row."""
    document = await get(client, "/api/funnel", by="agent", **MARCH)

    actual = [
        (
            row["group"],
            row["handled"],
            row["eligible"],
            row["offered"],
            row["started"],
            row["completed"],
            row["response_rate"],
            row["completion_rate"],
        )
        for row in document["rows"]
    ]

    assert [
        ("Alice", 6, 6, 5, 5, 5, 100.0, 83.3),
        ("Bob", 4, 4, 4, 4, 4, 100.0, 100.0),
        ("Carol", 3, 2, 2, 2, 1, 50.0, 50.0),
    ] == actual


async def test_funnel_per_queue(client: Client) -> None:
    """sales: calls 1-8 and 14 handled (13 abandoned), 8 surveys all completed.
    support: 9-12 handled, 12 ended by the caller, 10 hung up."""
    document = await get(client, "/api/funnel", by="queue", **MARCH)

    actual = [
        (row["group"], row["handled"], row["eligible"], row["offered"], row["completed"])
        for row in document["rows"]
    ]

    assert [("sales", 9, 9, 8, 8), ("support", 4, 3, 3, 2)] == actual


async def test_outliers_flag_agents_far_from_the_rest_of_their_queue(client: Client) -> None:
    """In sales, Alice 10,9,9,7,6 (mean +.4, variance .64, n 5) against the rest,
    Bob's 8,3,0 (mean -.667, variance .222, n 3): z = 1.067 / sqrt(.64/5 + .222/3)
    = 2.37 > 2, both ways. Completion rates (5/6 against 3/3) give |z| 0.75: no flag."""
    document = await get(client, "/api/outliers", **MARCH)

    actual = [
        (row["agent"], row["queue"], row["metric"], row["value"], row["rest_value"], row["z"])
        for row in document["rows"]
    ]

    assert [
        ("Alice", "sales", "nps", 40.0, -66.7, 2.37),
        ("Bob", "sales", "nps", -66.7, 40.0, -2.37),
    ] == actual


async def test_funnel_marks_the_outlier_agents(client: Client) -> None:
    """The funnel rows carry the outlier flag of /api/outliers."""
    document = await get(client, "/api/funnel", by="agent", **MARCH)

    assert [("Alice", True), ("Bob", True), ("Carol", False)] == [
        (row["group"], row["outlier"]) for row in document["rows"]
    ]


async def test_responses_page_through_newest_first(client: Client) -> None:
    """Ten surveys have an answer (10 hung up before any); pages of 4, 4, 2."""
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        params = {**MARCH, "limit": "4"} | ({"cursor": cursor} if cursor else {})
        document = await get(client, "/api/responses", **params)
        seen += [row["linkedid"] for row in document["rows"]]
        pages += 1
        if document["next"] is None:
            break
        cursor = document["next"]

    assert (3, ["11", "8", "5", "7", "9", "4", "3", "6", "2", "1"]) == (pages, seen)


async def test_responses_filter_on_score_range_question_agent_and_dates(client: Client) -> None:
    """0-6 on either question: 2 (company 5), 4 (3), 5 (6), 7, 8, 11; on the company
    question only: 2, 4, 7; Bob's: 6-9; 10-11 March: 5, 8, 11."""

    async def linkedids(**params: str) -> list[str]:
        document = await get(client, "/api/responses", **params)
        return sorted(row["linkedid"] for row in document["rows"])

    actual = (
        await linkedids(**MARCH, min_score="0", max_score="6"),
        await linkedids(**MARCH, question="company", max_score="6"),
        await linkedids(**MARCH, agent="Bob"),
        await linkedids(**{"from": "2025-03-10", "to": "2025-03-11"}),
    )

    assert (
        ["11", "2", "4", "5", "7", "8"],
        ["2", "4", "7"],
        ["6", "7", "8", "9"],
        ["11", "5", "8"],
    ) == actual


async def test_csv_escapes_cells_a_spreadsheet_would_run(client: Client) -> None:
    """= + - @ at the start of a cell get a leading quote, as in `ivr-survey export`."""
    async with client.get("/api/responses.csv", params=MARCH, headers=ADMIN) as reply:
        assert ("text/csv", 200) == (reply.content_type, reply.status)
        rows = list(csv.DictReader(io.StringIO(await reply.text())))

    names = {row["linkedid"]: row["caller_name"] for row in rows}
    numbers = {row["caller_number"] for row in rows}
    assert (
        10,
        "'" + FORMULA_NAME,
        "'-2+3",
        "'@SUM(A1)",
        {"'+4930123456"},
    ) == (len(rows), names["1"], names["2"], names["3"], numbers)


async def test_viewers_see_callers_masked_in_json_and_csv(client: Client) -> None:
    """+4930123456 -> +49301****456, Ada Caller -> A. C.; admins see them whole."""
    async with client.get(
        "/api/responses", params={**MARCH, "agent": "Bob"}, headers=VIEWER
    ) as reply:
        viewer_rows = (await reply.json())["rows"]
    async with client.get(
        "/api/responses.csv", params={**MARCH, "agent": "Bob"}, headers=VIEWER
    ) as reply:
        viewer_csv = list(csv.DictReader(io.StringIO(await reply.text())))
    admin_rows = (await get(client, "/api/responses", agent="Bob", **MARCH))["rows"]

    assert (
        {("+49301****456", "A. C.")},
        {("'+49301****456", "A. C.")},
        {("+4930123456", "Ada Caller")},
    ) == (
        {(row["caller_number"], row["caller_name"]) for row in viewer_rows},
        {(row["caller_number"], row["caller_name"]) for row in viewer_csv},
        {(row["caller_number"], row["caller_name"]) for row in admin_rows},
    )
