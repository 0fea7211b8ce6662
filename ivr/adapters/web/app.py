"""The aiohttp application: API, dashboard, login, health and metrics.

Shared objects live on the application under `web.AppKey`s, the rollup
refresher is a `cleanup_ctx` (started with the app, cancelled with it), and
every request passes two middlewares: errors (bad input is a JSON 400, a
database outage a 503, never a 500 unless there is a bug) and authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from http import HTTPStatus
from importlib import metadata
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from aiohttp import web

from ivr.adapters.i18n import N_
from ivr.adapters.web import metrics as prometheus
from ivr.adapters.web import openapi, pages, spec, views
from ivr.adapters.web.auth import ADMIN, Authenticator, Principal
from ivr.adapters.web.connections import WEB_REFUSAL_REASONS, ConnectionGuard, guarded
from ivr.adapters.web.language import READER, reader_for, remember
from ivr.adapters.web.login_limits import LoginLimiter
from ivr.adapters.web.metrics import AlertCounts
from ivr.adapters.web.params import BadRequest, Parsed, parse
from ivr.adapters.web.revocation_sync import RevocationSync
from ivr.adapters.web.style import STYLESHEET
from ivr.config.settings import WebConfig
from ivr.ports import (
    RecordingLookup,
    ReportReader,
    ReportsUnavailable,
    RevocationStore,
    ServiceMetrics,
)

log = logging.getLogger(__name__)

CSV_PAGE = 2000
AUDIO_TYPES = {".wav": "audio/wav", ".gsm": "audio/x-gsm", ".ulaw": "audio/basic"}
PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/login", "/login/link", "/api/openapi.json", "/static/style.css"}
)
# Survey ids are a 32-bit integer column on PostgreSQL: a larger id names nothing.
MAX_SURVEY_ID = 2**31 - 1
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


class AlertSource(Protocol):
    def counts(self) -> AlertCounts: ...


LISTEN_BACKLOG = 1024

REPORTS: web.AppKey[ReportReader] = web.AppKey("reports")
METRICS: web.AppKey[ServiceMetrics] = web.AppKey("metrics")
SETTINGS = web.AppKey("settings", WebConfig)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
CONNECTIONS: web.AppKey[ConnectionGuard | None] = web.AppKey("connections")
ALERTS: web.AppKey[AlertSource | None] = web.AppKey("alerts")
TODAY: web.AppKey[Callable[[], date] | None] = web.AppKey("today")
REFRESH: web.AppKey[bool] = web.AppKey("refresh")
RECORDINGS: web.AppKey[RecordingLookup | None] = web.AppKey("recordings")
REVOCATIONS: web.AppKey[RevocationSync | None] = web.AppKey("revocations")
PRINCIPAL = web.RequestKey("principal", Principal)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
View = Callable[[views.Request, Any], Awaitable[views.Document]]


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False)


def json_response(document: Any, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(document, status=status, dumps=_dumps, headers=headers or None)


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return json_response({"error": code, "message": message}, status=status, **headers)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


@web.middleware
async def _language(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page, the error pages included, is written in the reader's language."""
    request[READER] = reader_for(request, request.app[SETTINGS].language)
    try:
        response = await handler(request)
    except web.HTTPException as http:
        remember(request, http)
        raise
    remember(request, response)
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn refusals and outages into clear answers; only bugs become a 500."""
    try:
        return await handler(request)
    except BadRequest as problem:
        if _wants_json(request):
            return error(400, "bad_request", str(problem))
        return pages.error_page(request, 400, str(problem))
    except pages.PageNotFound as missing:
        return pages.error_page(request, 404, missing.message, **missing.values)
    except ReportsUnavailable as problem:
        log.warning("reports unavailable for %s: %s", request.path, problem)
        message = N_("the database cannot be read right now; try again shortly")
        if _wants_json(request):
            return error(503, "unavailable", message)
        return pages.error_page(request, 503, message)
    except web.HTTPException as http:
        if _wants_json(request) and http.status >= 400:
            return error(http.status, http.reason.lower().replace(" ", "_"), http.reason)
        if http.status == HTTPStatus.NOT_FOUND:
            return pages.error_page(
                request, 404, N_("there is no page %(path)s"), path=repr(request.path)
            )
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path_qs)
        if _wants_json(request):
            return error(500, "internal", "internal error; the service log has the details")
        return pages.error_page(request, 500, N_("internal error; the service log has the details"))


def _is_public(request: web.Request) -> bool:
    if request.path in PUBLIC_PATHS:
        return True
    return request.path == "/metrics" and request.app[SETTINGS].metrics_auth == "none"


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A bearer token or a session cookie for everything but the public paths."""
    authenticator = request.app[AUTHENTICATOR]
    principal = authenticator.from_authorization(
        request.headers.get("Authorization")
    ) or authenticator.from_cookie(request.cookies.get(openapi.SESSION_COOKIE))
    if principal is not None:
        request[PRINCIPAL] = principal
    if principal is not None or _is_public(request):
        return await handler(request)
    if _wants_json(request):
        message = (
            "send Authorization: Bearer <token>"
            if authenticator.configured
            else "no tokens or users are configured in [web]: nobody can sign in"
        )
        return error(
            401, "unauthorized", message, **{"WWW-Authenticate": 'Bearer realm="ivr-survey"'}
        )
    raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path != "/static/style.css":
        response.headers.setdefault("Cache-Control", "no-store")


def context(request: web.Request, query: Parsed | None = None) -> views.Request:
    """The request's reports read in its zone: `tz` if the query has one, else
    the reader's (`[reports] timezone`); today is today there."""
    reports = request.app[REPORTS]
    zone = (None if query is None else query.zone("tz")) or reports.zone
    if zone.key != reports.zone.key:
        reports = reports.in_zone(zone)
    today = request.app[TODAY]
    return views.Request(
        reports=reports,
        settings=request.app[SETTINGS],
        principal=request[PRINCIPAL],
        today=datetime.now(zone).date() if today is None else today(),
        recordings=request.app[RECORDINGS],
        zone=zone,
    )


def _report(endpoint: spec.Endpoint, view: View) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        query = parse(request.query, endpoint.params)
        return json_response(await view(context(request, query), query))

    return handle


async def _responses_csv(request: web.Request) -> web.StreamResponse:
    """Every matching row, fetched and written a page at a time (keyset), so an
    export of a year neither holds the year in memory nor the connection idle."""
    query = parse(request.query, spec.RESPONSES_CSV.params)
    here = context(request, query)
    filters = views.response_filter(query, here.today)
    reports = here.reports
    page = await reports.responses(filters, after=None, limit=CSV_PAGE)
    name = f"responses-{filters.period.first}-{filters.period.last}.csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    await response.prepare(request)
    header = True
    while True:
        rows = [views.visible(row, here.principal) for row in page.rows]
        await response.write(reports.responses_csv(rows, header=header).encode("utf-8"))
        header = False
        if page.next is None:
            break
        try:
            page = await reports.responses(filters, after=page.next, limit=CSV_PAGE)
        except ReportsUnavailable as problem:
            # The status line is long gone: cut the connection, so the client sees
            # a broken transfer rather than a CSV that looks complete.
            log.warning("CSV export cut short: %s", problem)
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response


async def _recording(request: web.Request) -> web.StreamResponse:
    """A recorded comment, by survey id; admins only (a caller's voice is not masked)."""
    if request[PRINCIPAL].role != ADMIN:
        raise web.HTTPForbidden(text="only admins may listen to recorded comments")
    recordings = request.app[RECORDINGS]
    path = None
    survey_id = int(request.match_info["survey_id"])
    if recordings is not None and survey_id <= MAX_SURVEY_ID:
        path = await recordings.path_of(survey_id)
    if path is None:
        raise web.HTTPNotFound(text="no recording of this survey is readable here")
    content_type = AUDIO_TYPES.get(path.suffix, "application/octet-stream")
    return web.FileResponse(path, headers={"Content-Type": content_type})


async def _healthz(request: web.Request) -> web.StreamResponse:
    problems = prometheus.health_problems(request.app[METRICS])
    return json_response({"status": "degraded" if problems else "ok", "problems": problems})


async def _metrics(request: web.Request) -> web.StreamResponse:
    source = request.app[ALERTS]
    guard = request.app.get(CONNECTIONS)
    text = prometheus.render(
        request.app[METRICS],
        None if source is None else source.counts(),
        login_refusals=request.app[LOGIN_LIMITER].refused(),
        web_connections=None
        if guard is None
        else (guard.open, dict.fromkeys(WEB_REFUSAL_REASONS, 0) | dict(guard.refused)),
    )
    return web.Response(text=text, headers={"Content-Type": prometheus.CONTENT_TYPE})


def _version() -> str:
    try:
        return metadata.version("ivr-survey")
    except metadata.PackageNotFoundError:
        return "0"


async def _openapi(request: web.Request) -> web.StreamResponse:
    return json_response(openapi.document(_version(), request.app[REPORTS].zone.key))


async def _stylesheet(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=STYLESHEET,
        content_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/dashboard")


def _safe_next(target: str | None) -> str:
    """Only a path on this site: a login form must not send people to another one.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash,
    so `/\t/evil.example` would leave as `//evil.example`: anything but printable
    ASCII is refused, and the rest must parse as a path with no scheme or host.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/dashboard"
    if any(not 0x20 < ord(char) < 0x7F for char in target) or "\\" in target:
        return "/dashboard"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/dashboard"
    return target


def _client_address(request: web.Request) -> str:
    return request.remote or "unknown"


async def _login_form(request: web.Request) -> web.StreamResponse:
    target = _safe_next(request.query.get("next"))
    return pages.login_page(request, target, None)


def _signed_in(request: web.Request, principal: Principal, target: str) -> web.HTTPSeeOther:
    settings = request.app[SETTINGS]
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        openapi.SESSION_COOKIE,
        request.app[AUTHENTICATOR].session_cookie(principal),
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="Lax",
        secure=settings.base_url().startswith("https://"),
        path="/",
    )
    return response


async def _login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, password = form.get("username"), form.get("password")
    target = _safe_next(str(form.get("next") or ""))
    if not isinstance(name, str) or not isinstance(password, str):
        return pages.login_page(request, target, N_("enter a user name and a password"), status=400)
    limiter = request.app[LOGIN_LIMITER]
    address = _client_address(request)
    refusal = limiter.refusal(address, name)
    if refusal is not None:
        return pages.login_page(
            request, target, *refusal.message, status=429, retry_after=refusal.retry_after
        )
    limiter.checking(address)
    principal = None
    try:
        principal = await request.app[AUTHENTICATOR].login(name, password)
    finally:
        limiter.checked(address, name, succeeded=principal is not None)
    if principal is None:
        log.warning("dashboard: failed login for %r from %s", name[:64], address)
        return pages.login_page(request, target, N_("wrong user name or password"), status=401)
    raise _signed_in(request, principal, target)


async def _login_link(request: web.Request) -> web.StreamResponse:
    """A one-time sign-in link: sets the session cookie, then opens the dashboard.

    Opening the link again from a browser that it already signed in (a reload, a
    second tab) just opens the dashboard: the link is spent, the session is not.
    """
    principal = request.app[AUTHENTICATOR].redeem_sign_in_link(request.query.get("token"))
    if principal is None and PRINCIPAL in request:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    if principal is None:
        return pages.login_page(
            request,
            "/dashboard",
            N_(
                "this sign-in link has expired or was used already; sign in, or ask for a new "
                "link (ivr-survey web login-link USER)"
            ),
            status=403,
        )
    log.info(
        "dashboard: %r signed in with a one-time link from %s",
        principal.name,
        _client_address(request),
    )
    raise _signed_in(request, principal, _safe_next(request.query.get("next")))


async def _logout(request: web.Request) -> web.StreamResponse:
    revocation = request.app[AUTHENTICATOR].revoke(request.cookies.get(openapi.SESSION_COOKIE))
    sync = request.app[REVOCATIONS]
    if revocation is not None and sync is not None:
        principal = request.get(PRINCIPAL)
        await sync.signed_out(revocation, principal.name if principal else "?")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(openapi.SESSION_COOKIE, path="/")
    raise response


def _page(render: Callable[[views.Request, web.Request], Awaitable[str]]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(text=await render(context(request), request), content_type="text/html")

    return handle


async def _refresh_forever(reports: ReportReader, interval: float) -> None:
    """Keep the rollups current: the first pass may build them from scratch."""
    while True:
        started = time.monotonic()
        try:
            await reports.refresh()
        except ReportsUnavailable as problem:
            log.warning("report rollups not refreshed: %s", problem)
        except Exception:
            log.exception("report rollups not refreshed")
        else:
            took = time.monotonic() - started
            if took > 1.0:
                log.info("report rollups refreshed in %.1f s", took)
        await asyncio.sleep(interval)


async def _rollups(app: web.Application) -> AsyncIterator[None]:
    task = None
    if app[REFRESH]:
        task = asyncio.create_task(
            _refresh_forever(app[REPORTS], app[SETTINGS].rollup_interval), name="report-rollups"
        )
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _revocation_sync(app: web.Application) -> AsyncIterator[None]:
    """The stored sign-outs are read before the first request is served."""
    sync = app[REVOCATIONS]
    task = None
    if sync is not None:
        await sync.catch_up()
        await sync.forget_expired()
        task = asyncio.create_task(sync.run_forever(), name="web-revocations")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(
    settings: WebConfig,
    reports: ReportReader,
    metrics: ServiceMetrics,
    *,
    alerts: AlertSource | None = None,
    today: Callable[[], date] | None = None,
    refresh_rollups: bool = True,
    recordings: RecordingLookup | None = None,
    revocations: RevocationStore | None = None,
) -> web.Application:
    """The whole web application; `refresh_rollups` False leaves the rollups to
    someone else (tests that compare the raw and rolled-up paths, the benchmark);
    `revocations` None keeps sign-outs in this process only (tests); `today`
    None is today in each request's zone (a fixed day for tests). The reports'
    zone is the reader's (`ReportReader.zone`, from `[reports] timezone`)."""
    app = web.Application(
        middlewares=[_language, _errors, _authenticate], client_max_size=64 * 1024
    )
    app[SETTINGS] = settings
    app[REPORTS] = reports
    app[METRICS] = metrics
    app[ALERTS] = alerts
    app[TODAY] = today
    app[REFRESH] = refresh_rollups
    app[RECORDINGS] = recordings
    app[AUTHENTICATOR] = Authenticator(settings)
    app[REVOCATIONS] = (
        None if revocations is None else RevocationSync(app[AUTHENTICATOR], revocations)
    )
    app[LOGIN_LIMITER] = LoginLimiter(
        per_address=settings.login_failures_per_address,
        per_user=settings.login_failures_per_user,
        window_seconds=settings.login_window_seconds,
    )
    app.cleanup_ctx.append(_rollups)
    app.cleanup_ctx.append(_revocation_sync)
    app.on_response_prepare.append(_security_headers)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    """Every path the app answers: the reports as declared in `spec`, the rest by hand."""
    report_views: dict[str, View] = {
        spec.NPS.path: views.nps,
        spec.AGENT_VS_COMPANY.path: views.agent_vs_company,
        spec.CHAMPIONS.path: views.champions,
        spec.NPS_BY_DURATION.path: views.nps_by_duration,
        spec.FUNNEL.path: views.funnel,
        spec.OUTLIERS.path: views.outliers,
        spec.RESPONSES.path: views.responses,
    }
    for endpoint in spec.REPORTS:
        if endpoint is spec.RESPONSES_CSV:
            app.router.add_get(endpoint.path, _responses_csv, allow_head=False)
        else:
            app.router.add_get(
                endpoint.path, _report(endpoint, report_views[endpoint.path]), allow_head=False
            )
    app.router.add_get("/api/openapi.json", _openapi, allow_head=False)
    app.router.add_get(r"/recordings/{survey_id:\d{1,18}}", _recording)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics, allow_head=False)
    app.router.add_get("/static/style.css", _stylesheet)
    app.router.add_get("/", _root, allow_head=False)
    app.router.add_get("/login", _login_form, allow_head=False)
    app.router.add_post("/login", _login)
    app.router.add_get("/login/link", _login_link, allow_head=False)
    app.router.add_post("/logout", _logout)
    for path, render in pages.PAGES.items():
        app.router.add_get(path, _page(render), allow_head=False)


class WebServer:
    """Serves the app on [web] host:port; `start()`/`stop()` for the service.

    Port 0 picks a free port (tests); `url` gives the address actually bound.
    """

    def __init__(
        self,
        settings: WebConfig,
        reports: ReportReader,
        metrics: ServiceMetrics,
        *,
        alerts: AlertSource | None = None,
        today: Callable[[], date] | None = None,
        refresh_rollups: bool = True,
        recordings: RecordingLookup | None = None,
        revocations: RevocationStore | None = None,
    ) -> None:
        self._settings = settings
        self.app = create_app(
            settings,
            reports,
            metrics,
            alerts=alerts,
            today=today,
            refresh_rollups=refresh_rollups,
            recordings=recordings,
            revocations=revocations,
        )
        self.connections = ConnectionGuard(
            max_connections=settings.max_connections, header_timeout=settings.header_timeout
        )
        self.app[CONNECTIONS] = self.connections
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._port: int | None = None

    async def start(self) -> None:
        runner = web.AppRunner(
            self.app,
            access_log_format='%a "%r" %s %b %Tf',
            keepalive_timeout=self._settings.idle_timeout,
        )
        await runner.setup()
        assert runner.server is not None
        try:
            # Our own listener rather than web.TCPSite, so every connection
            # passes the guard before aiohttp sees it (ivr/adapters/web/connections.py).
            self._listener = await asyncio.get_running_loop().create_server(
                guarded(runner.server, self.connections),
                self._settings.host,
                self._settings.port,
                backlog=LISTEN_BACKLOG,
            )
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(self._listener.sockets[0].getsockname()[1])
        if not self.app[AUTHENTICATOR].configured:
            log.warning(
                "web: no [web] tokens or users configured; the API and dashboard refuse everyone"
            )
        log.info("web: dashboard and API on %s", self.url)

    @property
    def port(self) -> int:
        assert self._port is not None, "the web server is not started"
        return self._port

    @property
    def url(self) -> str:
        host = self._settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
