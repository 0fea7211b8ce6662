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
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from markupsafe import Markup

from ivr.adapters.i18n import CALENDARS, LANGUAGES, N_, NAMES, Reader
from ivr.adapters.web import dashboard_data as data
from ivr.adapters.web import svg, views
from ivr.adapters.web.language import READER
from ivr.adapters.web.params import BadRequest, Param, parse
from ivr.adapters.web.spec import FROM, TO
from ivr.core.nps import Category, classify
from ivr.ports import Period

REFRESH_SECONDS = 300
UTC_ZONE = ZoneInfo("UTC")

LANG = Param("lang", "choice", "The page's language (remembered).", choices=LANGUAGES)
CALENDAR = Param(
    "calendar", "choice", "Persian dates: Solar Hijri or Gregorian.", choices=CALENDARS
)
OVERVIEW_PARAMS = (FROM, TO, LANG, CALENDAR)
AGENTS_PARAMS = (
    FROM,
    TO,
    LANG,
    CALENDAR,
    Param("sort", "choice", "Column to sort by.", choices=data.SORT_COLUMNS, default="agent_nps"),
    Param("dir", "choice", "Sort direction.", choices=("asc", "desc"), default="desc"),
)
AGENT_PARAMS = (FROM, TO, LANG, CALENDAR, Param("name", "name", "The agent."))
QUEUES_PARAMS = (FROM, TO, LANG, CALENDAR)

NAVIGATION = (
    ("overview", "/dashboard", N_("Overview")),
    ("agents", "/dashboard/agents", N_("Agents")),
    ("queues", "/dashboard/queues", N_("Queues")),
)
# Words that arrive as data (a role, a status, a figure's key) and are shown translated.
SHOWN_WORDS = (
    N_("admin"),
    N_("viewer"),
    N_("completed"),
    N_("partial"),
    N_("no_answer"),
    N_("hung_up"),
    N_("in_progress"),
    N_("interrupted"),
)
METRIC_LABELS = {"completion_rate": N_("completion rate"), "nps": N_("agent question NPS")}
TREND_TITLES = {
    "day": N_("NPS trend by day"),
    "week": N_("NPS trend by week"),
    "month": N_("NPS trend by month"),
}
FUNNEL_LABELS = {
    "handled": N_("Handled"),
    "eligible": N_("Eligible"),
    "offered": N_("Offered"),
    "started": N_("Started"),
    "completed": N_("Completed"),
}

Render = Callable[[views.Request, web.Request], Awaitable[str]]


class PageNotFound(Exception):
    """The page asked for shows nothing that exists (an agent with no calls); a 404.

    The message is an English template and its values, so the page can say it
    in the reader's language."""

    def __init__(self, message: str, **values: str) -> None:
        super().__init__(message % values)
        self.message = message
        self.values = values


# --- What the templates call ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Formats:
    """Figures and dates as this reader writes them; "n/a" where there is none."""

    reader: Reader
    zone: ZoneInfo

    def _missing(self) -> str:
        return self.reader.gettext("n/a")

    def number(self, value: float | None, decimals: int = 1) -> str:
        return self._missing() if value is None else self.reader.decimal(value, decimals)

    def rate(self, value: float | None) -> str:
        return self._missing() if value is None else self.reader.percent(value)

    def integer(self, value: int | None) -> str:
        return self._missing() if value is None else self.reader.integer(value)

    def day(self, value: date) -> str:
        return self.reader.day(value)

    def moment(self, stamp: str) -> str:
        """A stored UTC time, in the reports' zone: the day, then hours and minutes."""
        local = datetime.fromisoformat(stamp).astimezone(self.zone)
        clock = self.reader.integer(local.hour).rjust(2, self.reader.integer(0))
        minutes = self.reader.integer(local.minute).rjust(2, self.reader.integer(0))
        return f"{self.reader.day(local.date())} {clock}:{minutes}"


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


def metric_label(key: str) -> str:
    return METRIC_LABELS.get(key, key.replace("_", " "))


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ivr.adapters.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    environment.filters.update(tone=tone, score_class=score_class, metric_label=metric_label)
    environment.globals.update(
        href=href,
        split_bar=split_bar,
        navigation=NAVIGATION,
        refresh_seconds=REFRESH_SECONDS,
        languages=[(code, NAMES[code]) for code in LANGUAGES],
    )
    return environment


TEMPLATES = _environment()


def render(template: str, request: web.Request, zone: ZoneInfo, **values: Any) -> str:
    """A page in the reader's language: its messages through the catalogs, its
    figures and dates through `Formats`, its direction from the language."""
    reader = request[READER]

    def here(**choice: str) -> str:
        return href(request.path, **{**request.query, **choice})

    return TEMPLATES.get_template(template).render(
        **values,
        gettext=reader.gettext,
        ngettext=reader.ngettext,
        _=reader.gettext,
        fmt=Formats(reader, zone),
        lang=reader.language,
        direction=reader.direction,
        calendar=reader.calendar,
        here=here,
        zone=zone.key,
    )


# --- Frames -----------------------------------------------------------------------------


def zone_of(context: views.Request) -> ZoneInfo:
    """The reports' zone: its days are the page's days, and its name is in the footer."""
    return context.zone


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
            "generated": datetime.now(UTC).isoformat(),
        }


def _html(status: int, document: str) -> web.Response:
    return web.Response(text=document, status=status, content_type="text/html")


def login_page(
    request: web.Request,
    target: str,
    message: str | None,
    values: Mapping[str, str] | None = None,
    *,
    status: int = 200,
    retry_after: int | None = None,
) -> web.Response:
    """The sign-in form; `message` is English, shown in the reader's language."""
    reader = request[READER]
    shown = reader.gettext(message) % dict(values or {}) if message else None
    title = reader.gettext("Sign in")
    document = render("login.html", request, UTC_ZONE, title=title, target=target, message=shown)
    response = _html(status, document)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def error_page(request: web.Request, status: int, message: str, **values: str) -> web.Response:
    """An error in the reader's language where the catalogs know the message
    (details such as a parameter's complaint stay in English)."""
    reader = request[READER]
    shown = reader.gettext(message) % values if values else reader.gettext(message)
    title = reader.gettext("Error")
    return _html(status, render("error.html", request, UTC_ZONE, title=title, message=shown))


# --- Charts -----------------------------------------------------------------------------

SERIES_NAMES = {
    views.AGENT_QUESTION: N_("agent question"),
    views.COMPANY_QUESTION: N_("company question"),
}


def trend_chart(trend: data.Trend, reader: Reader) -> Markup:
    """Time runs from past to present left to right in every language, RTL too:
    the axis is a time line, not text."""
    label = {"day": reader.short_day, "week": reader.day, "month": reader.month}[trend.grouping]
    series = [
        svg.Series(name=reader.gettext(SERIES_NAMES[question]), values=values, css=question)
        for question, values in trend.values.items()
    ]
    title = reader.gettext(TREND_TITLES[trend.grouping])
    labels = [label(start) for start in trend.starts]
    return drawn(svg.line_chart(labels, series, title=title, written=reader.decimal))


def funnel_chart(steps: Mapping[str, Any], reader: Reader) -> Markup:
    counts = [(reader.gettext(FUNNEL_LABELS[step]), steps[step]) for step in data.FUNNEL_STEPS]
    title = reader.gettext("Survey funnel")
    return drawn(svg.funnel_chart(counts, title=title, written=reader.decimal))


def duration_chart(document: views.Document, title: str, reader: Reader) -> Markup:
    bars = [
        svg.Bar(
            label=reader.digits(row["label"]),
            value=row["nps"],
            css="positive" if (row["nps"] or 0) >= 0 else "negative",
            note="n=" + reader.integer(row["n"]),
        )
        for row in document["rows"]
    ]
    chart = svg.bar_chart(
        bars, title=reader.gettext(title), width=640, height=320, written=reader.decimal
    )
    return drawn(chart)


# --- Pages ------------------------------------------------------------------------------


async def overview(context: views.Request, request: web.Request) -> str:
    period = parse(request.query, OVERVIEW_PARAMS).period(context.today)
    reader = request[READER]
    shown = await data.overview(context, period)
    title = reader.gettext("Overview")
    frame = Frame(context, title, "overview", "/dashboard", period)
    return render(
        "overview.html",
        request,
        zone_of(context),
        **frame.values(),
        data=shown,
        steps=[(step, FUNNEL_LABELS[step], shown.totals[step]) for step in data.FUNNEL_STEPS],
        trend_title=TREND_TITLES[shown.trend.grouping],
        trend_chart=trend_chart(shown.trend, reader),
        funnel_chart=funnel_chart(shown.totals, reader),
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
    ("agent", N_("Agent")),
    ("n", N_("Answers")),
    ("agent_nps", N_("Agent NPS")),
    ("company_nps", N_("Company NPS")),
    ("gap", N_("Gap (same calls)")),
    (None, N_("Promoters · passives · detractors")),
    ("completed", N_("Completed")),
    ("response_rate", N_("Response rate")),
    ("completion_rate", N_("Completion rate")),
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
    title = request[READER].gettext("Agents")
    frame = Frame(context, title, "agents", "/dashboard/agents", period, hidden)
    return render(
        "agents.html",
        request,
        zone_of(context),
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
    reader = request[READER]
    shown = await data.agent(context, period, name)
    if shown.unknown:
        raise PageNotFound(
            N_(
                "no agent %(name)s handled a call from %(first)s to %(last)s: "
                "pick one on the Agents page, or another period"
            ),
            name=repr(name),
            first=reader.day(period.first),
            last=reader.day(period.last),
        )
    frame = Frame(context, name, "agents", "/dashboard/agent", period, {"name": name})
    return render(
        "agent.html",
        request,
        zone_of(context),
        **frame.values(),
        data=shown,
        trend_title=TREND_TITLES[shown.trend.grouping],
        trend_chart=trend_chart(shown.trend, reader),
        funnel_chart=funnel_chart(shown.steps, reader) if shown.steps else Markup(""),
    )


QUEUE_HEADINGS = (
    N_("Queue"),
    N_("Answers"),
    N_("Agent NPS"),
    N_("Company NPS"),
    N_("Handled"),
    N_("Eligible"),
    N_("Offered"),
    N_("Completed"),
    N_("Response rate"),
)
DURATION_TITLES = (
    ("hold", N_("NPS by hold time (agent question)")),
    ("talk", N_("NPS by talk time (agent question)")),
)


async def queues(context: views.Request, request: web.Request) -> str:
    period = parse(request.query, QUEUES_PARAMS).period(context.today)
    reader = request[READER]
    shown = await data.queues(context, period)
    frame = Frame(context, reader.gettext("Queues"), "queues", "/dashboard/queues", period)
    documents = {"hold": shown.hold, "talk": shown.talk}
    charts = [
        (title, duration_chart(documents[measure], title, reader))
        for measure, title in DURATION_TITLES
    ]
    return render(
        "queues.html",
        request,
        zone_of(context),
        **frame.values(),
        data=shown,
        charts=charts,
        headings=QUEUE_HEADINGS,
    )


PAGES: dict[str, Render] = {
    "/dashboard": overview,
    "/dashboard/agents": agents,
    "/dashboard/agent": agent,
    "/dashboard/queues": queues,
}
