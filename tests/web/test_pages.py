"""The dashboard's HTML without a browser: escaping, sorting by link, errors."""

from __future__ import annotations

from html import unescape

from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.adapters.web import svg
from tests.helpers.web import ADMIN, MARCH
from tests.web.webdriver import metrics

Client = TestClient[web.Request, web.Application]
HOSTILE = '<script>alert("x")</script>'


async def html(client: Client, path: str, **params: str) -> tuple[int, str]:
    async with client.get(path, params=params, headers=ADMIN) as reply:
        return reply.status, await reply.text()


async def test_names_from_the_pbx_or_the_url_cannot_inject_markup(client: Client) -> None:
    """An agent name is text wherever it appears, the not-found page included."""
    status, page = await html(client, "/dashboard/agent", name=HOSTILE, **MARCH)

    assert (404, False, True) == (status, "<script" in page, "&lt;script&gt;" in page)


async def test_an_agent_nobody_knows_is_a_404_page_that_keeps_the_navigation(
    client: Client,
) -> None:
    """`?name=Nobody` is no empty page: a 404 naming the period, with the way back."""
    status, page = await html(client, "/dashboard/agent", name="Nobody", **MARCH)
    missing_status, missing_page = await html(client, "/dashboard/nowhere")

    assert (404, True, True) == (
        status,
        "no agent 'Nobody' handled a call from Mar 1, 2025 to Mar 31, 2025" in unescape(page),
        'href="/dashboard/agents"' in page,
    )
    assert (404, True) == (missing_status, 'href="/dashboard/queues"' in missing_page)


def test_chart_labels_are_escaped() -> None:
    chart = svg.line_chart(["a<b"], [svg.Series(HOSTILE, [1.0], "agent")], title="t&t")

    assert (False, True, True) == ("<script" in chart, "a&lt;b" in chart, "t&amp;t" in chart)


async def test_the_agents_table_sorts_by_its_query_parameters(client: Client) -> None:
    """Sorting is a link (?sort=&dir=), so it works with JavaScript off:
    by agent NPS ascending Carol -100, Bob -25, Alice 40."""
    _, page = await html(client, "/dashboard/agents", sort="agent_nps", dir="asc", **MARCH)

    shown = metrics(page)
    assert ["-100.0", "-25.0", "40.0"] == [shown[f"agents-{i}-agent-nps"] for i in range(3)]


async def test_bad_dashboard_parameters_are_a_400_page(client: Client) -> None:
    status, page = await html(client, "/dashboard/agents", sort="colour")

    assert (400, True) == (status, "sort: 'colour' is not one of" in unescape(page))


async def test_pages_carry_no_script_and_refresh_themselves(client: Client) -> None:
    """Wall screens stay current by a meta refresh; no script, no external resource."""
    pages = [
        (await html(client, path, **MARCH))[1]
        for path in ("/dashboard", "/dashboard/agents", "/dashboard/queues")
    ]

    assert [(False, True, False)] * 3 == [
        ("<script" in page, 'http-equiv="refresh"' in page, "https://" in page) for page in pages
    ]
