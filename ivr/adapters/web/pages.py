"""The dashboard: overview, agents, one agent, queues - HTML built on the server.

Every figure comes from `ivr.adapters.web.views`, the functions behind the JSON API, and
carries a `data-metric` attribute naming it, so a test in a real browser can
read the page and compare it with the API. No JavaScript: sorting is a link
with query parameters, the period a plain GET form, and the page reloads
itself every five minutes (meta refresh) to stay current on a wall screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivr.adapters.web import svg, views
from ivr.adapters.web.params import BadRequest, Param, Parsed, parse
from ivr.adapters.web.spec import FROM, TO
from ivr.core.nps import Category, classify
from ivr.ports import Period

REFRESH_SECONDS = 300
DAY_TREND_MAX_DAYS = 62
WEEK_TREND_MAX_DAYS = 400
RECENT_DETRACTORS = 15
DETRACTOR_MAX = 6

SORT_COLUMNS = (
    "agent",
    "n",
    "agent_nps",
    "company_nps",
    "gap",
    "completed",
    "response_rate",
    "completion_rate",
)
OVERVIEW_PARAMS = (FROM, TO)
AGENTS_PARAMS = (
    FROM,
    TO,
    Param("sort", "choice", "Column to sort by.", choices=SORT_COLUMNS, default="agent_nps"),
    Param("dir", "choice", "Sort direction.", choices=("asc", "desc"), default="desc"),
)
AGENT_PARAMS = (FROM, TO, Param("name", "name", "The agent."))
QUEUES_PARAMS = (FROM, TO)

Render = Callable[[views.Request, web.Request], Awaitable[str]]


# --- Formatting -------------------------------------------------------------------------


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


def score(value: int | None) -> str:
    if value is None:
        return '<span class="score muted">n/a</span>'
    category = classify(value)
    css = {Category.PROMOTER: "promoter", Category.PASSIVE: "passive"}.get(category, "detractor")
    return f'<span class="score {css}">{value}</span>'


def metric(name: str, text: str, css: str = "") -> str:
    classes = f' class="{css}"' if css else ""
    return f'<span{classes} data-metric="{escape(name)}">{escape(text)}</span>'


def cell(content: str, css: str = "") -> str:
    return f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>"


def agent_link(name: str, params: dict[str, str]) -> str:
    return link("/dashboard/agent", name, name=name, **params)


def link(path: str, text: str, **params: str) -> str:
    query = urlencode({key: value for key, value in params.items() if value})
    href = f"{path}?{query}" if query else path
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _period_params(period: Period) -> dict[str, str]:
    return {"from": period.first.isoformat(), "to": period.last.isoformat()}


def _period_query(period: Period, **extra: Any) -> Parsed:
    return Parsed({"from": period.first, "to": period.last, **extra})


# --- Layout -----------------------------------------------------------------------------


def layout(
    context: views.Request,
    *,
    title: str,
    active: str,
    period: Period,
    body: str,
    hidden: dict[str, str] | None = None,
    path: str = "/dashboard",
) -> str:
    params = _period_params(period)
    nav = "".join(
        f'<a class="{"active" if key == active else ""}" '
        f'href="{escape(target + "?" + urlencode(params))}">{label}</a>'
        for key, target, label in NAVIGATION
    )
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in (hidden or {}).items()
    )
    principal = context.principal
    masked = " · callers masked" if principal.masks_callers else ""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{escape(title)} · ivr-survey</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><header class="top"><div class="brand">ivr<span>·</span>survey</div><nav>{nav}</nav>
<form class="period" method="get" action="{escape(path)}">{inputs}
<label>From <input type="date" name="from" value="{period.first.isoformat()}"></label>
<label>To <input type="date" name="to" value="{period.last.isoformat()}"></label>
<button type="submit">Show</button></form>
<div class="user"><span>{escape(principal.name)} · {escape(principal.role)}{masked}</span>
<form method="post" action="/logout"><button type="submit">Sign out</button></form></div>
</header><main>{body}</main>
<footer>UTC days {period.first.isoformat()} to {period.last.isoformat()} · generated {generated}
· NPS = % promoters (9-10) minus % detractors (0-6); ± is the 95% margin of error.</footer>
</body></html>"""


class PageNotFound(Exception):
    """The page asked for shows nothing that exists (an agent with no calls); a 404."""


NAVIGATION = (
    ("overview", "/dashboard", "Overview"),
    ("agents", "/dashboard/agents", "Agents"),
    ("queues", "/dashboard/queues", "Queues"),
)


def _page(status: int, title: str, body: str, *, navigation: bool = False) -> web.Response:
    """A page outside the dashboard's frame; error pages keep the way back."""
    header = ""
    if navigation:
        links = "".join(f'<a href="{target}">{label}</a>' for _, target, label in NAVIGATION)
        header = (
            '<header class="top"><div class="brand">ivr<span>·</span>survey</div>'
            f"<nav>{links}</nav></header>"
        )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · ivr-survey</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body>{header}<main>{body}</main></body></html>"""
    return web.Response(text=document, status=status, content_type="text/html")


def login_page(
    target: str, message: str | None, *, status: int = 200, retry_after: int | None = None
) -> web.Response:
    problem = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    body = f"""<div class="login panel"><h1>ivr·survey</h1>
<form method="post" action="/login">
<input type="hidden" name="next" value="{escape(target)}">
<label for="username">User</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>{problem}</form></div>"""
    response = _page(status, "Sign in", body)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def error_page(status: int, message: str) -> web.Response:
    body = (
        f'<div class="panel"><h1>Cannot show this page</h1>'
        f'<p class="error">{escape(message)}</p>'
        '<p><a href="/dashboard">Back to the overview</a></p></div>'
    )
    return _page(status, "Error", body, navigation=True)


def card(
    label: str,
    name: str,
    value: float | None,
    sub: str,
    *,
    css: str | None = None,
    suffix: str = "",
) -> str:
    text = number(value) + (suffix if value is not None else "")
    return (
        f'<div class="panel card"><div class="label">{escape(label)}</div>'
        f'<div class="big">{metric(name, text, css if css is not None else tone(value))}</div>'
        f'<div class="sub">{sub}</div></div>'
    )


def nps_card(label: str, name: str, row: views.Document | None) -> str:
    if row is None:
        return card(label, name, None, "no answers in this period")
    sub = (
        f"± {metric(name + '-margin', number(row['margin']))} · "
        f"n = {metric(name + '-n', str(row['n']))}"
        + (' <span class="badge few">too few</span>' if row["too_few"] else "")
    )
    return card(label, name, row["nps"], sub)


# --- Trends -----------------------------------------------------------------------------


def trend_grouping(period: Period) -> str:
    days = (period.last - period.first).days + 1
    if days <= DAY_TREND_MAX_DAYS:
        return "day"
    return "week" if days <= WEEK_TREND_MAX_DAYS else "month"


def _starts(period: Period, grouping: str) -> list[date]:
    """Every day, week or month start in the period, so gaps show as gaps."""
    if grouping == "day":
        return [
            period.first + timedelta(days=index)
            for index in range((period.last - period.first).days + 1)
        ]
    if grouping == "week":
        start = period.first - timedelta(days=period.first.weekday())
        weeks = []
        while start <= period.last:
            weeks.append(start)
            start += timedelta(days=7)
        return weeks
    month = period.first.replace(day=1)
    months = []
    while month <= period.last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def trend_chart(document: views.Document, period: Period, title: str) -> str:
    grouping = document["group_by"]
    starts = _starts(period, grouping)
    values: dict[tuple[str, str], float | None] = {
        (row["group"], row["question"]): row["nps"] for row in document["rows"]
    }
    labels = [start.isoformat()[5:] if grouping == "day" else start.isoformat() for start in starts]
    series = [
        svg.Series(
            name=f"{question} question",
            values=[values.get((start.isoformat(), question)) for start in starts],
            css=question,
        )
        for question in (views.AGENT_QUESTION, views.COMPANY_QUESTION)
    ]
    return svg.line_chart(labels, series, title=title)


# --- Pages ------------------------------------------------------------------------------


def _by_question(rows: Iterable[views.Document]) -> dict[str, views.Document]:
    return {row["question"]: row for row in rows}


async def overview(context: views.Request, request: web.Request) -> str:
    query = parse(request.query, OVERVIEW_PARAMS)
    period = query.period(context.today)
    grouping = trend_grouping(period)
    whole, trend, (funnel, outliers), best = await asyncio.gather(
        views.nps(context, _period_query(period, group_by="all")),
        views.nps(context, _period_query(period, group_by=grouping)),
        views.funnel_and_outliers(context, _period_query(period), by="queue"),
        views.champions(context, _period_query(period)),
    )
    overall = _by_question(whole["rows"])
    totals = {
        step: sum(row[step] for row in funnel["rows"])
        for step in ("handled", "eligible", "offered", "started", "completed")
    }
    response = 100.0 * totals["completed"] / totals["offered"] if totals["offered"] else None
    params = _period_params(period)

    def ranking(rows: Sequence[views.Document], name: str) -> str:
        if not rows:
            return '<p class="muted">No agent has enough answers yet.</p>'
        items = "".join(
            f'<li>{agent_link(row["agent"], params)}<b class="{tone(row["nps"])}">'
            f"{metric(f'{name}-{index}', number(row['nps']))}</b></li>"
            for index, row in enumerate(rows)
        )
        return f'<ul class="rank">{items}</ul>'

    flagged = "".join(
        "<tr>"
        + cell(agent_link(row["agent"], params))
        + cell(escape(row["queue"] or "n/a"))
        + cell(escape(row["metric"].replace("_", " ")))
        + cell(number(row["value"]))
        + cell(number(row["rest_value"]))
        + cell(f"{row['z']:.2f}")
        + "</tr>"
        for row in outliers["rows"]
    )
    outlier_panel = (
        "<table><tr><th>Agent</th><th>Queue</th><th>Figure</th><th>Agent</th>"
        f"<th>Rest of queue</th><th>z</th></tr>{flagged}</table>"
        if flagged
        else '<p class="muted">No agent stands out from their queue.</p>'
    )
    steps = [
        ("Handled", totals["handled"]),
        ("Eligible", totals["eligible"]),
        ("Offered", totals["offered"]),
        ("Started", totals["started"]),
        ("Completed", totals["completed"]),
    ]
    funnel_numbers = "".join(
        f'<span class="muted">{label}: {metric("funnel-" + label.lower(), str(count))}</span> '
        for label, count in steps
    )
    body = f"""<h1>Overview</h1>
<div class="grid cards">
{nps_card("Agent NPS", "nps-agent", overall.get(views.AGENT_QUESTION))}
{nps_card("Company NPS", "nps-company", overall.get(views.COMPANY_QUESTION))}
{card("Response rate", "response-rate", response, "completed of offered", css="", suffix="%")}
<div class="panel card"><div class="label">Surveys completed</div>
<div class="big">{metric("completed", f"{totals['completed']:,}")}</div>
<div class="sub">of {totals["handled"]:,} calls handled</div></div>
</div>
<div class="panel"><h2>NPS trend by {grouping}</h2>{trend_chart(trend, period, "NPS trend")}</div>
<div class="grid two spaced">
<div class="panel"><h2>Survey funnel</h2>{svg.funnel_chart(steps, title="Survey funnel")}
<p>{funnel_numbers}</p></div>
<div class="panel"><h2>Agent question: top and bottom (n ≥ {best["min_n"]})</h2>
<div class="grid two"><div><h2 class="good">Top</h2>{ranking(best["top"], "top")}</div>
<div><h2 class="bad">Bottom</h2>{ranking(best["bottom"], "bottom")}</div></div></div>
</div>
<div class="panel spaced"><h2>Outliers against their queue</h2>{outlier_panel}
<p class="note">{escape(outliers["rule"])}</p></div>"""
    return layout(
        context, title="Overview", active="overview", period=period, body=body, path="/dashboard"
    )


def _sort_value(row: dict[str, Any], column: str) -> tuple[int, Any]:
    value = row.get(column)
    if value is None:
        return (1, 0)
    return (0, value.lower() if isinstance(value, str) else value)


async def agents(context: views.Request, request: web.Request) -> str:
    query = parse(request.query, AGENTS_PARAMS)
    period = query.period(context.today)
    column = query.text("sort") or "agent_nps"
    descending = (query.text("dir") or "desc") == "desc"
    by_agent, same_calls, steps_by_agent = await asyncio.gather(
        views.nps(context, _period_query(period, group_by="agent")),
        views.agent_vs_company(context, _period_query(period)),
        views.funnel(context, _period_query(period, by="agent")),
    )
    scores = by_agent["rows"]
    paired = {row["agent"]: row for row in same_calls["rows"]}
    funnel = {row["group"]: row for row in steps_by_agent["rows"]}
    table: dict[str | None, dict[str, Any]] = {}
    for row in scores:
        entry = table.setdefault(row["group"], {"agent": row["group"]})
        entry[row["question"]] = row
    for name in funnel:
        table.setdefault(name, {"agent": name})
    rows = []
    for name, entry in table.items():
        if name is None:
            continue
        agent_row, company_row = entry.get(views.AGENT_QUESTION), entry.get(views.COMPANY_QUESTION)
        steps = funnel.get(name, {})
        rows.append(
            {
                "agent": name,
                "n": agent_row["n"] if agent_row else 0,
                "agent_nps": agent_row["nps"] if agent_row else None,
                "agent_margin": agent_row["margin"] if agent_row else None,
                "company_nps": company_row["nps"] if company_row else None,
                "gap": paired.get(name, {}).get("gap"),
                "completed": steps.get("completed", 0),
                "response_rate": steps.get("response_rate"),
                "completion_rate": steps.get("completion_rate"),
                "outlier": steps.get("outlier", False),
                "too_few": agent_row["too_few"] if agent_row else True,
                "split": agent_row,
            }
        )
    present = [row for row in rows if row[column] is not None]
    missing = [row for row in rows if row[column] is None]
    present.sort(
        key=lambda row: (_sort_value(row, column), row["agent"].lower()), reverse=descending
    )
    rows = present + sorted(missing, key=lambda row: row["agent"].lower())
    params = _period_params(period)

    def header(key: str, label: str) -> str:
        direction = "asc" if key == column and descending else "desc"
        if key == "agent" and key != column:
            direction = "asc"
        arrow = (" ▼" if descending else " ▲") if key == column else ""
        css = ' class="sorted"' if key == column else ""
        href = "/dashboard/agents?" + urlencode({**params, "sort": key, "dir": direction})
        return f'<th><a{css} href="{escape(href)}">{escape(label)}{arrow}</a></th>'

    lines = []
    for index, row in enumerate(rows):
        split = row["split"]
        bar = (
            svg.split_bar(split["promoters"], split["passives"], split["detractors"])
            if split
            else ""
        )
        badges = (' <span class="badge few">too few</span>' if row["too_few"] else "") + (
            ' <span class="badge outlier">outlier</span>' if row["outlier"] else ""
        )
        margin = (
            f' <span class="muted">±{number(row["agent_margin"])}</span>'
            if row["agent_margin"] is not None
            else ""
        )
        key = f"agents-{index}"
        lines.append(
            f'<tr class="{"few" if row["too_few"] else ""}" data-agent="{escape(row["agent"])}">'
            + cell(agent_link(row["agent"], params) + badges, "name")
            + cell(metric(f"{key}-n", str(row["n"])))
            + cell(
                metric(f"{key}-agent-nps", number(row["agent_nps"])) + margin,
                tone(row["agent_nps"]),
            )
            + cell(
                metric(f"{key}-company-nps", number(row["company_nps"])),
                tone(row["company_nps"]),
            )
            + cell(metric(f"{key}-gap", number(row["gap"])))
            + cell(bar)
            + cell(metric(f"{key}-completed", str(row["completed"])))
            + cell(metric(f"{key}-response-rate", rate(row["response_rate"])))
            + cell(metric(f"{key}-completion-rate", rate(row["completion_rate"])))
            + "</tr>"
        )
    head = (
        "<tr>"
        + header("agent", "Agent")
        + header("n", "Answers")
        + header("agent_nps", "Agent NPS")
        + header("company_nps", "Company NPS")
        + header("gap", "Gap (same calls)")
        + "<th>Promoters · passives · detractors</th>"
        + header("completed", "Completed")
        + header("response_rate", "Response rate")
        + header("completion_rate", "Completion rate")
        + "</tr>"
    )
    empty = "" if lines else '<p class="muted">No agent handled a call in this period.</p>'
    listing = f'<table id="agents">{head}{"".join(lines)}</table>{empty}'
    body = f"""<h1>Agents</h1><div class="panel">{listing}
<p class="note">Rows dimmed: fewer than {context.settings.min_n} answers.
Gap: agent NPS minus company NPS over the calls where both were answered.
Completion rate: completed surveys per eligible call.</p></div>"""
    return layout(
        context,
        title="Agents",
        active="agents",
        period=period,
        body=body,
        hidden={"sort": column, "dir": "desc" if descending else "asc"},
        path="/dashboard/agents",
    )


async def _playable(context: views.Request, rows: Sequence[views.Document]) -> frozenset[int]:
    """The recorded comments an admin can play here (the file is readable locally)."""
    if context.recordings is None or context.principal.masks_callers:
        return frozenset()
    with_comment = [row["survey_id"] for row in rows if row.get("comment_file")]
    return await context.recordings.playable(with_comment) if with_comment else frozenset()


def comment_cell(row: views.Document, index: int, playable: frozenset[int]) -> str:
    """An audio player for admins when the file is here; otherwise just that one exists."""
    if row.get("comment_seconds") is None:
        return ""
    if row["survey_id"] in playable:
        return (
            f'<audio controls preload="none" data-metric="detractor-{index}-comment" '
            f'src="/recordings/{int(row["survey_id"])}"></audio>'
        )
    return metric(f"detractor-{index}-comment", "comment recorded")


async def agent(context: views.Request, request: web.Request) -> str:
    query = parse(request.query, AGENT_PARAMS)
    name = query.text("name")
    if name is None:
        raise BadRequest("name: which agent? (/dashboard/agent?name=...)")
    period = query.period(context.today)
    grouping = trend_grouping(period)
    whole, trend, same_calls, (steps_by_agent, flagged), recent = await asyncio.gather(
        views.nps(context, _period_query(period, group_by="all", agent=name)),
        views.nps(context, _period_query(period, group_by=grouping, agent=name)),
        views.agent_vs_company(context, _period_query(period)),
        views.funnel_and_outliers(context, _period_query(period), by="agent"),
        views.responses(
            context,
            _period_query(period, agent=name, max_score=DETRACTOR_MAX, limit=RECENT_DETRACTORS),
        ),
    )
    overall = _by_question(whole["rows"])
    paired = next((row for row in same_calls["rows"] if row["agent"] == name), None)
    funnel = [row for row in steps_by_agent["rows"] if row["group"] == name]
    flags = [row for row in flagged["rows"] if row["agent"] == name]
    steps = funnel[0] if funnel else None
    if steps is None and not recent["rows"] and not any(row["n"] for row in whole["rows"]):
        raise PageNotFound(
            f"no agent {name!r} handled a call from {period.first} to {period.last}: "
            "pick one on the Agents page, or another period"
        )
    if paired is not None:
        comparison = (
            f'<div class="grid two"><div><div class="label muted">Agent question</div>'
            f'<div class="figure {tone(paired["agent_question"]["nps"])}">'
            f"{metric('paired-agent', number(paired['agent_question']['nps']))}</div></div>"
            f'<div><div class="label muted">Company question</div>'
            f'<div class="figure {tone(paired["company_question"]["nps"])}">'
            f"{metric('paired-company', number(paired['company_question']['nps']))}"
            "</div></div></div>"
            f"<p>Gap {metric('paired-gap', number(paired['gap']))} over "
            f"{metric('paired-n', str(paired['n']))} calls where the caller answered both.</p>"
        )
    else:
        comparison = '<p class="muted">No call with both questions answered.</p>'
    playable = await _playable(context, recent["rows"])
    rows = "".join(
        "<tr>"
        + cell(escape(row["started_at"][:16].replace("T", " ")))
        + cell(metric(f"detractor-{index}-caller", row["caller_number"] or "n/a"))
        + cell(escape(row["caller_name"] or ""))
        + cell(escape(row["queue"] or "n/a"))
        + f'<td data-metric="detractor-{index}-agent-score">{score(row["agent_score"])}</td>'
        + f'<td data-metric="detractor-{index}-company-score">{score(row["company_score"])}</td>'
        + cell(escape(row["status"]))
        + cell(comment_cell(row, index, playable))
        + "</tr>"
        for index, row in enumerate(recent["rows"])
    )
    detractors = (
        f"<table><tr><th>Started (UTC)</th><th>Caller</th><th>Name</th><th>Queue</th>"
        f"<th>Agent</th><th>Company</th><th>Status</th><th>Comment</th></tr>{rows}</table>"
        if rows
        else '<p class="muted">No detractor in this period.</p>'
    )
    flag_text = "".join(
        '<p><span class="badge outlier">outlier</span> '
        f"{escape(row['metric'].replace('_', ' '))} in {escape(row['queue'] or 'no queue')}: "
        f"{number(row['value'])} against {number(row['rest_value'])} "
        f"for the rest of the queue (z = {row['z']:.2f})</p>"
        for row in flags
    )
    funnel_chart = (
        svg.funnel_chart(
            [
                (label.title(), steps[label])
                for label in ("handled", "eligible", "offered", "started", "completed")
            ],
            title="Survey funnel",
        )
        + '<p class="muted">Response rate '
        + metric("agent-response-rate", rate(steps["response_rate"]))
        + " · completion rate "
        + metric("agent-completion-rate", rate(steps["completion_rate"]))
        + "</p>"
        if steps
        else '<p class="muted">No handled call in this period.</p>'
    )
    body = f"""<h1>{escape(name)}</h1>{flag_text}
<div class="grid cards">
{nps_card("Agent NPS", "nps-agent", overall.get(views.AGENT_QUESTION))}
{nps_card("Company NPS", "nps-company", overall.get(views.COMPANY_QUESTION))}
</div>
<div class="panel"><h2>NPS trend by {grouping}</h2>{trend_chart(trend, period, "NPS trend")}</div>
<div class="grid two spaced">
<div class="panel"><h2>Agent versus company, same calls</h2>{comparison}</div>
<div class="panel"><h2>Survey funnel</h2>{funnel_chart}</div></div>
<div class="panel spaced"><h2>Recent detractors (0-6 on either question)</h2>{detractors}
<p class="note">Spoken comments are recorded on the Asterisk host, not stored here.</p></div>"""
    return layout(
        context,
        title=name,
        active="agents",
        period=period,
        body=body,
        hidden={"name": name},
        path="/dashboard/agent",
    )


async def queues(context: views.Request, request: web.Request) -> str:
    query = parse(request.query, QUEUES_PARAMS)
    period = query.period(context.today)
    by_queue_nps, steps_by_queue, hold, talk = await asyncio.gather(
        views.nps(context, _period_query(period, group_by="queue")),
        views.funnel(context, _period_query(period, by="queue")),
        views.nps_by_duration(context, _period_query(period, measure="hold", question="agent")),
        views.nps_by_duration(context, _period_query(period, measure="talk", question="agent")),
    )
    scores = by_queue_nps["rows"]
    funnel = {row["group"]: row for row in steps_by_queue["rows"]}
    by_queue: dict[str | None, dict[str, views.Document]] = {}
    for row in scores:
        by_queue.setdefault(row["group"], {})[row["question"]] = row
    for name in funnel:
        by_queue.setdefault(name, {})
    names = sorted(by_queue, key=lambda name: (name is None, name or ""))
    lines = []
    for index, name in enumerate(names):
        questions = by_queue[name]
        steps = funnel.get(name, {})
        cells = []
        for question in (views.AGENT_QUESTION, views.COMPANY_QUESTION):
            row = questions.get(question)
            value = row["nps"] if row else None
            margin = (
                f' <span class="muted">±{number(row["margin"])}</span>'
                if row and row["margin"] is not None
                else ""
            )
            cells.append(
                cell(metric(f"queues-{index}-{question}-nps", number(value)) + margin, tone(value))
            )
        answers = questions.get(views.AGENT_QUESTION, {}).get("n", 0)
        key = f"queues-{index}"
        lines.append(
            f'<tr data-queue="{escape(name or "")}">'
            + cell(escape(name or "(no queue)"), "name")
            + cell(metric(f"{key}-n", str(answers)))
            + "".join(cells)
            + cell(str(steps.get("handled", 0)))
            + cell(str(steps.get("eligible", 0)))
            + cell(str(steps.get("offered", 0)))
            + cell(metric(f"{key}-completed", str(steps.get("completed", 0))))
            + cell(metric(f"{key}-response-rate", rate(steps.get("response_rate"))))
            + "</tr>"
        )
    charts = []
    for document, title in ((hold, "NPS by hold time"), (talk, "NPS by talk time")):
        bars = [
            svg.Bar(
                label=row["label"],
                value=row["nps"],
                css="positive" if (row["nps"] or 0) >= 0 else "negative",
                note=f"n={row['n']}",
            )
            for row in document["rows"]
        ]
        chart = svg.bar_chart(bars, title=title, width=640, height=320)
        charts.append(f'<div class="panel"><h2>{title} (agent question)</h2>{chart}</div>')
    headings = (
        "Queue",
        "Answers",
        "Agent NPS",
        "Company NPS",
        "Handled",
        "Eligible",
        "Offered",
        "Completed",
        "Response rate",
    )
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    table = f'<table id="queues"><tr>{head}</tr>{"".join(lines)}</table>'
    body = f"""<h1>Queues</h1><div class="panel">{table}</div>
<div class="grid two spaced">{"".join(charts)}</div>"""
    return layout(
        context, title="Queues", active="queues", period=period, body=body, path="/dashboard/queues"
    )


PAGES: dict[str, Render] = {
    "/dashboard": overview,
    "/dashboard/agents": agents,
    "/dashboard/agent": agent,
    "/dashboard/queues": queues,
}
