"""The dashboard: overview, agents, one agent, queues - HTML built on the server.

Every figure comes from `ivr.adapters.web.views`, the functions behind the JSON
API, shaped by `ivr.adapters.web.dashboard_data` and written out by the Jinja2
templates in `templates/`, which escape everything they are given: a name from
the PBX or the URL stays text. Each figure carries a `data-metric` attribute
naming it, so a test in a real browser can read the page and compare it with
the API. No JavaScript: sorting is a link with query parameters, the period a
plain GET form, and the page reloads itself every five minutes (meta refresh)
to stay current on a wall screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from ivr.adapters.web import dashboard_data as data
from ivr.adapters.web import svg, views
from ivr.adapters.web.params import BadRequest, Param, parse
from ivr.adapters.web.spec import FROM, TO
from ivr.core.nps import Category, classify
from ivr.ports import Period

REFRESH_SECONDS = 300

OVERVIEW_PARAMS = (FROM, TO)
AGENTS_PARAMS = (
    FROM,
    TO,
    Param("sort", "choice", "Column to sort by.", choices=data.SORT_COLUMNS, default="agent_nps"),
    Param("dir", "choice", "Sort direction.", choices=("asc", "desc"), default="desc"),
)
AGENT_PARAMS = (FROM, TO, Param("name", "name", "The agent."))
QUEUES_PARAMS = (FROM, TO)

NAVIGATION = (
    ("overview", "/dashboard", "Overview"),
    ("agents", "/dashboard/agents", "Agents"),
    ("queues", "/dashboard/queues", "Queues"),
)

Render = Callable[[views.Request, web.Request], Awaitable[str]]


class PageNotFound(Exception):
    """The page asked for shows nothing that exists (an agent with no calls); a 404."""


# --- What the templates call ------------------------------------------------------------


def number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def tone(nps: float | None) -> str:
    """Colour of an NPS: green above 30, amber from 0, red below 0."""
    if nps is None:
        return "muted"
    if nps > 30:
        return "good"
    return "mid" if nps >= 0 else "bad"


def score_class(value: int) -> str:
    return {Category.PROMOTER: "promoter", Category.PASSIVE: "passive"}.get(
        classify(value), "detractor"
    )


def href(path: str, **params: Any) -> str:
    """A link with its query; empty values are left out so links stay short."""
    query = urlencode({key: value for key, value in params.items() if value})
    return f"{path}?{query}" if query else path


def drawn(chart: str) -> Markup:
    """A chart from `svg`, inserted as markup because svg escapes every text it writes."""
    return Markup(chart)  # noqa: S704 - svg escapes labels and titles; test_pages checks it


def split_bar(row: views.Document | None) -> Markup:
    if row is None:
        return Markup("")
    return drawn(svg.split_bar(row["promoters"], row["passives"], row["detractors"]))


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ivr.adapters.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(number=number, rate=rate, tone=tone, score_class=score_class)
    environment.globals.update(
        href=href, split_bar=split_bar, navigation=NAVIGATION, refresh_seconds=REFRESH_SECONDS
    )
    return environment


TEMPLATES = _environment()


def render(template: str, **values: Any) -> str:
    return TEMPLATES.get_template(template).render(**values)


# --- Frames -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """What the dashboard's frame needs: who reads, which page, which period."""

    context: views.Request
    title: str
    active: str
    path: str
    period: Period
    hidden: Mapping[str, str] | None = None

    def values(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "active": self.active,
            "path": self.path,
            "period": self.period,
            "params": {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()},
            "hidden": dict(self.hidden or {}),
            "principal": self.context.principal,
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }


def _html(status: int, document: str) -> web.Response:
    return web.Response(text=document, status=status, content_type="text/html")


def login_page(
    target: str, message: str | None, *, status: int = 200, retry_after: int | None = None
) -> web.Response:
    response = _html(status, render("login.html", title="Sign in", target=target, message=message))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def error_page(status: int, message: str) -> web.Response:
    return _html(status, render("error.html", title="Error", message=message))


# --- Charts -----------------------------------------------------------------------------


def trend_chart(trend: data.Trend, title: str) -> Markup:
    labels = [
        start.isoformat()[5:] if trend.grouping == "day" else start.isoformat()
        for start in trend.starts
    ]
    series = [
        svg.Series(name=f"{question} question", values=values, css=question)
        for question, values in trend.values.items()
    ]
    return drawn(svg.line_chart(labels, series, title=title))


def funnel_chart(steps: Mapping[str, Any]) -> Markup:
    counts = [(step.title(), steps[step]) for step in data.FUNNEL_STEPS]
    return drawn(svg.funnel_chart(counts, title="Survey funnel"))


def duration_chart(document: views.Document, title: str) -> Markup:
    bars = [
        svg.Bar(
            label=row["label"],
            value=row["nps"],
            css="positive" if (row["nps"] or 0) >= 0 else "negative",
            note=f"n={row['n']}",
        )
        for row in document["rows"]
    ]
    return drawn(svg.bar_chart(bars, title=title, width=640, height=320))


# --- Pages ------------------------------------------------------------------------------


async def overview(context: views.Request, request: web.Request) -> str:
    period = parse(request.query, OVERVIEW_PARAMS).period(context.today)
    shown = await data.overview(context, period)
    frame = Frame(context, "Overview", "overview", "/dashboard", period)
    return render(
        "overview.html",
        **frame.values(),
        data=shown,
        steps=[(step.title(), shown.totals[step]) for step in data.FUNNEL_STEPS],
        trend_chart=trend_chart(shown.trend, "NPS trend"),
        funnel_chart=funnel_chart(shown.totals),
    )


@dataclass(frozen=True, slots=True)
class Column:
    """A heading of the Agents table; its link sorts by it, flipping the direction."""

    key: str | None
    label: str
    sorted: bool = False
    direction: str = "desc"
    arrow: str = ""


AGENT_COLUMNS = (
    ("agent", "Agent"),
    ("n", "Answers"),
    ("agent_nps", "Agent NPS"),
    ("company_nps", "Company NPS"),
    ("gap", "Gap (same calls)"),
    (None, "Promoters · passives · detractors"),
    ("completed", "Completed"),
    ("response_rate", "Response rate"),
    ("completion_rate", "Completion rate"),
)


def columns(sorted_by: str, *, descending: bool) -> list[Column]:
    """A second click on the sorted column reverses it; names first sort A to Z."""
    headings = []
    for key, label in AGENT_COLUMNS:
        if key != sorted_by:
            headings.append(Column(key, label, direction="asc" if key == "agent" else "desc"))
            continue
        arrow = " ▼" if descending else " ▲"
        headings.append(Column(key, label, True, "asc" if descending else "desc", arrow))
    return headings


async def agents(context: views.Request, request: web.Request) -> str:
    query = parse(request.query, AGENTS_PARAMS)
    period = query.period(context.today)
    column = query.text("sort") or "agent_nps"
    descending = (query.text("dir") or "desc") == "desc"
    rows = await data.agents(context, period, column, descending=descending)
    hidden = {"sort": column, "dir": "desc" if descending else "asc"}
    frame = Frame(context, "Agents", "agents", "/dashboard/agents", period, hidden)
    return render(
        "agents.html",
        **frame.values(),
        rows=rows,
        columns=columns(column, descending=descending),
        min_n=context.settings.min_n,
    )


async def agent(context: views.Request, request: web.Request) -> str:
    query = parse(request.query, AGENT_PARAMS)
    name = query.text("name")
    if name is None:
        raise BadRequest("name: which agent? (/dashboard/agent?name=...)")
    period = query.period(context.today)
    shown = await data.agent(context, period, name)
    if shown.unknown:
        raise PageNotFound(
            f"no agent {name!r} handled a call from {period.first} to {period.last}: "
            "pick one on the Agents page, or another period"
        )
    frame = Frame(context, name, "agents", "/dashboard/agent", period, {"name": name})
    return render(
        "agent.html",
        **frame.values(),
        data=shown,
        trend_chart=trend_chart(shown.trend, "NPS trend"),
        funnel_chart=funnel_chart(shown.steps) if shown.steps else Markup(""),
    )


async def queues(context: views.Request, request: web.Request) -> str:
    period = parse(request.query, QUEUES_PARAMS).period(context.today)
    shown = await data.queues(context, period)
    frame = Frame(context, "Queues", "queues", "/dashboard/queues", period)
    charts = [
        ("NPS by hold time", duration_chart(shown.hold, "NPS by hold time")),
        ("NPS by talk time", duration_chart(shown.talk, "NPS by talk time")),
    ]
    return render("queues.html", **frame.values(), data=shown, charts=charts)


PAGES: dict[str, Render] = {
    "/dashboard": overview,
    "/dashboard/agents": agents,
    "/dashboard/agent": agent,
    "/dashboard/queues": queues,
}
