"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver).

JavaScript is off. Each test signs in through the login form, opens the
pages, compares every figure shown with what the JSON API answers for the
same period, and saves a screenshot under artifacts/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.adapters.i18n import Reader
from ivr.adapters.web.pages import Formats
from storage.analytics import SqlReportReader
from storage.database import create_engine, session_factory, upgrade
from tests.helpers.web import ADMIN, MARCH, PASSWORD, app_for
from tests.helpers.writes import committed_writes
from tests.web.scenario import NOW, store_history
from tests.web.webdriver import CHROMEDRIVER, CHROMIUM, Browser, chromium, metrics

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Client]:
    """The app over the hand-worked history in a SQLite file, on a real port."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'dashboard.sqlite3'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        async with committed_writes(engine) as writes:
            await store_history(writes)
        reader = SqlReportReader(sessions, clock=lambda: NOW)
        async with TestClient(TestServer(app_for(reader))) as client:
            yield client
    finally:
        await engine.dispose()


def page(client: Client, path: str, **params: str) -> str:
    return str(client.make_url(path)) + "?" + urlencode({**MARCH, **params})


async def api(client: Client, path: str, **params: str) -> Any:
    async with client.get(path, params={**MARCH, **params}, headers=ADMIN) as reply:
        assert 200 == reply.status
        return await reply.json()


async def sign_in(browser: Browser, client: Client, user: str, target: str) -> None:
    """Open a page, get sent to the form, sign in, land where we were going."""
    await browser.open(target)
    assert "/login?next=" in await browser.url()
    await browser.type("#username", user)
    await browser.type("#password", PASSWORD)
    await browser.click("button[type=submit]")
    await browser.wait_for("header.top")
    assert target == await browser.url()


@pytest.mark.parametrize("language", ["en", "fa", "ru"])
async def test_every_page_shows_the_apis_numbers(served: Client, language: str) -> None:
    """Overview, agents (sorted by a header link), one agent and queues: each
    figure on the page equals the API's for March, written as the language writes
    it (Persian digits, decimal commas); the language picked on the first page holds
    on the links that follow."""
    formats = Formats(Reader.of(language), ZoneInfo("UTC"))

    def shown(value: float | None, suffix: str = "") -> str:
        return formats.rate(value) if suffix else formats.number(value)

    count = formats.integer
    suffix = "" if language == "en" else f"-{language}"
    async with chromium() as browser:
        overview_url = page(served, "/dashboard", lang=language)
        await sign_in(browser, served, "manager", overview_url)
        overview = metrics(await browser.source())
        await browser.screenshot(ARTIFACTS / f"dashboard{suffix}-overview.png")

        await browser.open(page(served, "/dashboard/agents", sort="n", dir="asc"))
        agents_by_n = metrics(await browser.source())
        await browser.screenshot(ARTIFACTS / f"dashboard{suffix}-agents.png")
        await browser.click("th a[href*='sort=agent_nps']")
        await browser.wait_for("th a.sorted[href*='sort=agent_nps']")
        sorted_url = await browser.url()
        agents_by_nps = metrics(await browser.source())

        await browser.open(page(served, "/dashboard/agent", name="Alice"))
        alice = metrics(await browser.source())
        await browser.screenshot(ARTIFACTS / f"dashboard{suffix}-agent.png")

        await browser.open(page(served, "/dashboard/queues"))
        queues = metrics(await browser.source())
        await browser.screenshot(ARTIFACTS / f"dashboard{suffix}-queues.png")

    whole = {
        row["question"]: row for row in (await api(served, "/api/nps", group_by="all"))["rows"]
    }
    funnel = (await api(served, "/api/funnel", by="queue"))["rows"]
    champions = await api(served, "/api/champions")
    steps = ("handled", "eligible", "offered", "started", "completed")
    totals = {step: sum(row[step] for row in funnel) for step in steps}
    assert {
        "nps-agent": shown(whole["agent"]["nps"]),
        "nps-agent-margin": shown(whole["agent"]["margin"]),
        "nps-agent-n": count(whole["agent"]["n"]),
        "nps-company": shown(whole["company"]["nps"]),
        "nps-company-margin": shown(whole["company"]["margin"]),
        "nps-company-n": count(whole["company"]["n"]),
        "response-rate": shown(100.0 * totals["completed"] / totals["offered"], "%"),
        "completed": count(totals["completed"]),
        **{f"funnel-{step}": count(total) for step, total in totals.items()},
        **{f"top-{i}": shown(row["nps"]) for i, row in enumerate(champions["top"])},
        **{f"bottom-{i}": shown(row["nps"]) for i, row in enumerate(champions["bottom"])},
    } == overview

    by_agent = {
        (row["group"], row["question"]): row
        for row in (await api(served, "/api/nps", group_by="agent"))["rows"]
    }
    agent_funnel = {
        row["group"]: row for row in (await api(served, "/api/funnel", by="agent"))["rows"]
    }
    paired = {row["agent"]: row for row in (await api(served, "/api/agent-vs-company"))["rows"]}

    def agent_row(name: str, index: int) -> dict[str, str]:
        key = f"agents-{index}"
        return {
            f"{key}-n": count(by_agent[(name, "agent")]["n"]),
            f"{key}-agent-nps": shown(by_agent[(name, "agent")]["nps"]),
            f"{key}-company-nps": shown(by_agent[(name, "company")]["nps"]),
            f"{key}-gap": shown(paired[name]["gap"]),
            f"{key}-completed": count(agent_funnel[name]["completed"]),
            f"{key}-response-rate": shown(agent_funnel[name]["response_rate"], "%"),
            f"{key}-completion-rate": shown(agent_funnel[name]["completion_rate"], "%"),
        }

    # By answers ascending: Carol 1, Bob 4, Alice 5; by agent NPS descending: Alice
    # 40, Bob -25, Carol -100.
    assert (
        agent_row("Carol", 0) | agent_row("Bob", 1) | agent_row("Alice", 2),
        agent_row("Alice", 0) | agent_row("Bob", 1) | agent_row("Carol", 2),
        True,
    ) == (agents_by_n, agents_by_nps, "sort=agent_nps" in sorted_url)

    alice_whole = {
        row["question"]: row
        for row in (await api(served, "/api/nps", group_by="all", agent="Alice"))["rows"]
    }
    detractors = (await api(served, "/api/responses", agent="Alice", max_score="6", limit="15"))[
        "rows"
    ]
    assert {
        "nps-agent": shown(alice_whole["agent"]["nps"]),
        "nps-agent-margin": shown(alice_whole["agent"]["margin"]),
        "nps-agent-n": count(alice_whole["agent"]["n"]),
        "nps-company": shown(alice_whole["company"]["nps"]),
        "nps-company-margin": shown(alice_whole["company"]["margin"]),
        "nps-company-n": count(alice_whole["company"]["n"]),
        "paired-agent": shown(paired["Alice"]["agent_question"]["nps"]),
        "paired-company": shown(paired["Alice"]["company_question"]["nps"]),
        "paired-gap": shown(paired["Alice"]["gap"]),
        "paired-n": count(paired["Alice"]["n"]),
        "agent-response-rate": shown(agent_funnel["Alice"]["response_rate"], "%"),
        "agent-completion-rate": shown(agent_funnel["Alice"]["completion_rate"], "%"),
        **{
            name: value
            for index, row in enumerate(detractors)
            for name, value in (
                (f"detractor-{index}-caller", row["caller_number"]),
                (f"detractor-{index}-agent-score", count(row["agent_score"])),
                (f"detractor-{index}-company-score", count(row["company_score"])),
            )
        },
    } == alice

    by_queue = {
        (row["group"], row["question"]): row
        for row in (await api(served, "/api/nps", group_by="queue"))["rows"]
    }
    queue_funnel = {row["group"]: row for row in funnel}
    expected_queues: dict[str, str] = {}
    for index, name in enumerate(("sales", "support")):
        key = f"queues-{index}"
        expected_queues |= {
            f"{key}-n": count(by_queue[(name, "agent")]["n"]),
            f"{key}-agent-nps": shown(by_queue[(name, "agent")]["nps"]),
            f"{key}-company-nps": shown(by_queue[(name, "company")]["nps"]),
            f"{key}-completed": count(queue_funnel[name]["completed"]),
            f"{key}-response-rate": shown(queue_funnel[name]["response_rate"], "%"),
        }
    assert expected_queues == queues


async def test_a_viewer_sees_the_agent_page_with_callers_masked(served: Client) -> None:
    """Signed in as a viewer, the recent detractors show +49301****456."""
    async with chromium() as browser:
        target = page(served, "/dashboard/agent", name="Bob")
        await sign_in(browser, served, "wall", target)
        shown_metrics = metrics(await browser.source())
        await browser.screenshot(ARTIFACTS / "dashboard-agent-viewer.png")

    callers = {value for name, value in shown_metrics.items() if name.endswith("-caller")}
    assert {"+49301****456"} == callers


LAYOUT = """
const width = window.innerWidth;
const scrolls = (element) => ["auto", "scroll"].includes(getComputedStyle(element).overflowX);
const cut = [...document.querySelectorAll("body *")].filter((element) => {
  const box = element.getBoundingClientRect();
  if (box.right <= width + 0.5 && box.left >= -0.5) return false;
  for (let parent = element.parentElement; parent; parent = parent.parentElement) {
    if (scrolls(parent)) return false;
  }
  return true;
}).map((element) => element.tagName.toLowerCase() + "." + element.className);
const sizes = [...document.querySelectorAll("svg text")].map(
  (text) => parseFloat(getComputedStyle(text).fontSize) * text.getScreenCTM().a
);
const brand = document.querySelector(".brand");
const pages = document.querySelector("header.top nav");
return {
  direction: getComputedStyle(document.documentElement).direction,
  brand_on_the_right: brand && pages
    ? brand.getBoundingClientRect().left > pages.getBoundingClientRect().left : null,
  fits: document.documentElement.scrollWidth <= width,
  cut: [...new Set(cut)].slice(0, 5),
  smallest_chart_text: sizes.length ? Math.round(Math.min(...sizes) * 10) / 10 : null,
};
"""
SCREENS = {"desktop": (1600, 1000), "phone": (390, 844)}
MIN_CHART_TEXT_PX = 11.0


@pytest.mark.parametrize("language", ["en", "fa", "ru"])
@pytest.mark.parametrize("screen", SCREENS)
async def test_every_page_fits_the_screen_with_readable_charts(
    served: Client, screen: str, language: str
) -> None:
    """At 1600x1000 and at 390x844 no page is wider than the screen (wide tables
    and charts scroll inside their panel) and no chart text is under 11 px, in
    English, Russian (long words) and Persian (right to left, mirrored: the
    brand, first in the header, sits on the right)."""
    width, height = SCREENS[screen]
    paths = {
        "overview": page(served, "/dashboard", lang=language),
        "agents": page(served, "/dashboard/agents", lang=language),
        "agent": page(served, "/dashboard/agent", name="Alice", lang=language),
        "queues": page(served, "/dashboard/queues", lang=language),
        "not-found": page(served, "/dashboard/agent", name="Nobody", lang=language),
    }
    suffix = "" if language == "en" else f"-{language}"
    measured = {}
    async with chromium(width, height) as browser:
        await browser.open(str(served.make_url("/login")) + f"?lang={language}")
        measured["login"] = await browser.script(LAYOUT)
        await browser.screenshot(ARTIFACTS / f"layout-{screen}{suffix}-login.png")
        await sign_in(browser, served, "manager", paths["overview"])
        for name, url in paths.items():
            await browser.open(url)
            measured[name] = await browser.script(LAYOUT)
            await browser.screenshot(ARTIFACTS / f"layout-{screen}{suffix}-{name}.png")

    direction = "rtl" if language == "fa" else "ltr"
    framed = [name for name in measured if name != "login"]
    assert dict.fromkeys(framed, (direction, language == "fa")) == {
        name: (measured[name]["direction"], measured[name]["brand_on_the_right"]) for name in framed
    }, measured

    readable = {
        name: found["smallest_chart_text"] is None
        or found["smallest_chart_text"] >= MIN_CHART_TEXT_PX
        for name, found in measured.items()
    }
    assert {name: (True, []) for name in measured} == {
        name: (found["fits"], found["cut"]) for name, found in measured.items()
    }, measured
    assert dict.fromkeys(measured, True) == readable, measured
