"""Bad input is a JSON 400 naming the problem, never a 500, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from ivr.adapters.web.spec import REPORTS
from tests.helpers.web import ADMIN

Client = TestClient[web.Request, web.Application]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2025-02-30", "from: '2025-02-30' is not a calendar date"),
        ("from=yesterday", "from: 'yesterday' is not a date (YYYY-MM-DD)"),
        ("from=20250301", "from: '20250301' is not a date (YYYY-MM-DD)"),
        ("from=2025-03-10&to=2025-03-01", "from: 2025-03-10 is after to: 2025-03-01"),
        ("from=1999-12-31", "from: 1999-12-31 is outside 2000-01-01..2099-12-31"),
        ("from=2000-01-01&to=2099-12-31", "from/to: a period is at most 3660 days"),
        ("group_by=year", "group_by: 'year' is not one of all, agent, queue, day, week, month"),
        ("min_n=0", "min_n: 0 is outside 1..1e+06"),
        ("min_n=%EF%BC%91", "min_n: '\uff11' is not a whole number"),
        ("min_n=1_000", "min_n: '1_000' is not a whole number"),
        ("min_n=%2B5", "min_n: '+5' is not a whole number"),
        ("agent=", "agent: must be 1 to 200 characters"),
        ("agent=Bob%00", "agent: control characters are not allowed"),
        ("agent=" + "x" * 201, "agent: must be 1 to 200 characters"),
        ("agent=Bob&agent=Ann", "agent: given more than once"),
        ("tz=Mars/Olympus", "tz: 'Mars/Olympus' is not an IANA time zone (like Asia/Tehran)"),
        ("tz=", "tz: '' is not an IANA time zone (like Asia/Tehran)"),
        ("tz=%2B03:30", "tz: '+03:30' is not an IANA time zone (like Asia/Tehran)"),
        (
            "tz=..%2F..%2Fetc%2Fpasswd",
            "tz: '../../etc/passwd' is not an IANA time zone (like Asia/Tehran)",
        ),
        (
            "colour=red",
            "'colour': unknown parameter (known: from, to, tz, group_by, question, "
            "agent, queue, min_n)",
        ),
    ],
)
async def test_bad_nps_parameters_are_a_400_with_the_reason(
    client: Client, query: str, message: str
) -> None:
    """Each refusal names the parameter and the rule it broke."""
    url = URL(f"/api/nps?{query}", encoded=True)
    async with client.get(url, headers=ADMIN) as reply:
        body = await reply.json()

    assert (400, {"error": "bad_request", "message": message}) == (reply.status, body)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/responses", "limit=0"),
        ("/api/responses", "limit=501"),
        ("/api/responses", "cursor=not-a-cursor!"),
        ("/api/responses", "cursor=AAAA"),
        ("/api/responses", "cursor=OTk5OTk5OTk5OTk5OTk5OTk5Ojk5"),
        ("/api/responses", "min_score=11"),
        ("/api/responses", "max_score=-1"),
        ("/api/responses", "question=both"),
        ("/api/responses.csv", "limit=10"),
        ("/api/champions", "n=0"),
        ("/api/outliers", "z=0.1"),
        ("/api/outliers", "z=2e3"),
        ("/api/nps-by-duration", "measure=ring"),
        ("/api/funnel", "by=day"),
        ("/api/agent-vs-company", "queue="),
    ],
)
async def test_bad_parameters_of_every_endpoint_are_a_400(
    client: Client, path: str, query: str
) -> None:
    """Page sizes, cursors, scores, choices, empty names: all 400."""
    async with client.get(URL(f"{path}?{query}", encoded=True), headers=ADMIN) as reply:
        body = await reply.json()

    assert (400, "bad_request") == (reply.status, body["error"])


async def test_an_unknown_api_path_is_a_json_404(client: Client) -> None:
    async with client.get("/api/nope", headers=ADMIN) as reply:
        body = await reply.json()

    assert (404, "not_found") == (reply.status, body["error"])


_NAMES = sorted({param.name for endpoint in REPORTS for param in endpoint.params} | {"x", "ñ"})
_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
_VALUES = st.one_of(
    _TEXT,
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.dates().map(lambda day: day.isoformat()),
    st.sampled_from(["agent", "company", "day", "hold", "queue", "all", "0", "10", ""]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from([endpoint.path for endpoint in REPORTS]),
    query=st.dictionaries(st.sampled_from(_NAMES), _VALUES, max_size=5),
)
async def test_any_query_is_answered_200_or_400(
    client: Client, path: str, query: dict[str, Any]
) -> None:
    """Whatever the parameters, the API answers 200 or a JSON 400, never a 5xx."""
    async with client.get(path, params=query, headers=ADMIN) as reply:
        await reply.read()
        status = reply.status
        error = None if status == 200 else (await reply.json())["error"]

    assert (True, None if status == 200 else "bad_request") == (status in (200, 400), error)
