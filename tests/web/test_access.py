"""Who gets in: tokens, the login form's signed cookie, public paths, roles."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.adapters.web.auth import (
    Authenticator,
    Principal,
    hash_password,
    mask_name,
    mask_number,
    verify_password,
)
from ivr.config.settings import WebConfig
from storage.analytics import SqlReportReader
from tests.helpers.web import ADMIN, MARCH, PASSWORD, PASSWORD_HASH, VIEWER, app_for

Client = TestClient[web.Request, web.Application]


async def status_of(client: Client, path: str, **headers: str) -> int:
    async with client.get(path, headers=headers, allow_redirects=False) as reply:
        return reply.status


async def test_the_api_refuses_requests_without_a_valid_token(client: Client) -> None:
    """401 with a JSON reason and a WWW-Authenticate challenge; a wrong token or
    scheme is the same as none."""
    async with client.get("/api/nps") as reply:
        body, challenge = await reply.json(), reply.headers.get("WWW-Authenticate")

    assert (
        401,
        "unauthorized",
        'Bearer realm="ivr-survey"',
        401,
        401,
        200,
        200,
    ) == (
        reply.status,
        body["error"],
        challenge,
        await status_of(client, "/api/nps", Authorization="Bearer wrong-token-0123456789"),
        await status_of(client, "/api/nps", Authorization=f"Basic {ADMIN['Authorization'][7:]}"),
        await status_of(client, "/api/nps", **ADMIN),
        await status_of(client, "/api/nps", **VIEWER),
    )


async def test_health_openapi_and_stylesheet_need_no_login(client: Client) -> None:
    """Load balancers and API tooling reach these without credentials; the
    dashboard sends people to the login form, keeping where they were going."""
    async with client.get("/dashboard/agents?from=2025-03-01", allow_redirects=False) as reply:
        location = reply.headers["Location"]

    assert (200, 200, 200, 303, "/login?next=/dashboard/agents?from%3D2025-03-01") == (
        await status_of(client, "/healthz"),
        await status_of(client, "/api/openapi.json"),
        await status_of(client, "/static/style.css"),
        reply.status,
        location,
    )


async def test_metrics_need_a_token_unless_configured_open(history: SqlReportReader) -> None:
    """[web] metrics_auth = "none" lets a Prometheus without credentials scrape."""
    async with TestClient(TestServer(app_for(history))) as guarded:
        closed = await status_of(guarded, "/metrics")
    async with TestClient(TestServer(app_for(history, metrics_auth="none"))) as open_client:
        opened = await status_of(open_client, "/metrics")

    assert (401, 200) == (closed, opened)


async def test_the_login_form_sets_a_session_cookie_that_opens_the_dashboard(
    client: Client,
) -> None:
    """A right password: 303 to `next` with an HttpOnly, SameSite cookie that
    then opens the dashboard and the API; a wrong one: 401 and no cookie."""
    async with client.post(
        "/login",
        data={"username": "manager", "password": "nope", "next": "/dashboard"},
        allow_redirects=False,
    ) as refused:
        refused_cookie = refused.cookies.get("ivr_survey_session")
    async with client.post(
        "/login",
        data={"username": "manager", "password": PASSWORD, "next": "/dashboard/queues"},
        allow_redirects=False,
    ) as accepted:
        cookie = accepted.cookies["ivr_survey_session"]
        location = accepted.headers["Location"]

    assert (
        401,
        None,
        303,
        "/dashboard/queues",
        True,
        "Lax",
        200,
        200,
    ) == (
        refused.status,
        refused_cookie,
        accepted.status,
        location,
        bool(cookie["httponly"]),
        cookie["samesite"],
        await status_of(
            client, "/dashboard/queues?" + "&".join(f"{k}={v}" for k, v in MARCH.items())
        ),
        await status_of(client, "/api/funnel"),
    )


async def test_login_never_redirects_to_another_site(client: Client) -> None:
    """`next` must be a local path: //evil.example or a full URL goes to /dashboard."""
    locations = []
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        async with client.post(
            "/login",
            data={"username": "manager", "password": PASSWORD, "next": target},
            allow_redirects=False,
        ) as reply:
            locations.append(reply.headers["Location"])

    assert ["/dashboard"] * 3 == locations


async def test_logout_clears_the_session(client: Client) -> None:
    await client.post(
        "/login", data={"username": "wall", "password": PASSWORD}, allow_redirects=False
    )
    before = await status_of(client, "/dashboard")
    async with client.post("/logout", allow_redirects=False) as reply:
        logout = reply.status

    assert (200, 303, 303) == (before, logout, await status_of(client, "/dashboard"))


def authenticator(now: float, **overrides: str) -> Authenticator:
    values = {
        "users": f"manager:admin:{PASSWORD_HASH}",
        "session_secret": "secret-one",
        "session_hours": "1",
    } | overrides
    config = WebConfig(
        users=values["users"],
        session_secret=values["session_secret"],
        session_hours=float(values["session_hours"]),
    )
    return Authenticator(config, clock=lambda: now)


def test_a_session_cookie_is_refused_when_forged_expired_or_its_user_is_gone() -> None:
    """The signature, the expiry and the user's current role are all checked."""
    cookie = authenticator(1000.0).session_cookie(Principal("manager", "admin"))
    payload, signature = cookie.split(".")
    forged = f"{payload[:-2]}AA.{signature}"

    assert (
        Principal("manager", "admin"),
        None,
        None,
        None,
        None,
        None,
    ) == (
        authenticator(1000.0).from_cookie(cookie),
        authenticator(1000.0).from_cookie(forged),
        authenticator(1000.0 + 3601).from_cookie(cookie),
        authenticator(1000.0, session_secret="secret-two").from_cookie(cookie),
        authenticator(1000.0, users=f"manager:viewer:{PASSWORD_HASH}").from_cookie(cookie),
        authenticator(1000.0).from_cookie("not a cookie"),
    )


async def test_viewers_are_refused_nothing_but_see_callers_masked(client: Client) -> None:
    """The role changes what is shown, not what can be opened."""
    async with client.get("/api/responses", params=MARCH, headers=VIEWER) as reply:
        numbers = {row["caller_number"] for row in (await reply.json())["rows"]}

    assert (200, {"+49301****456"}) == (reply.status, numbers)


def test_masking_keeps_a_recognisable_prefix_and_suffix() -> None:
    """+98 912 123 4567 -> +98912****567; short numbers keep less; names keep initials."""
    assert (
        "+98912****567",
        "10****12",
        "****",
        None,
        "A. C.",
        None,
    ) == (
        mask_number("+989121234567"),
        mask_number("1001212"),
        mask_number("1001"),
        mask_number(None),
        mask_name("Ada Caller"),
        mask_name(None),
    )


async def test_nobody_gets_in_when_no_token_or_user_is_configured(
    history: SqlReportReader,
) -> None:
    """An unconfigured [web] refuses everyone, and says why."""
    async with (
        TestClient(TestServer(app_for(history, tokens="", users=""))) as bare,
        bare.get("/api/nps", headers=ADMIN) as reply,
    ):
        message = (await reply.json())["message"]

    assert (401, "no tokens or users are configured in [web]: nobody can sign in") == (
        reply.status,
        message,
    )


async def test_every_answer_carries_the_security_headers(client: Client) -> None:
    """No script may run, no frame may embed the dashboard, no referrer leaks agent names."""
    async with client.get("/healthz") as reply:
        headers = reply.headers

    assert (
        "nosniff",
        "no-referrer",
        True,
        "no-store",
    ) == (
        headers["X-Content-Type-Options"],
        headers["Referrer-Policy"],
        "default-src 'none'" in headers["Content-Security-Policy"],
        headers["Cache-Control"],
    )


def test_password_hashes_verify_only_the_right_password() -> None:
    """PBKDF2-SHA256 with its own salt and iteration count; a malformed hash never matches."""
    encoded = hash_password("s3cret pass", iterations=1000)

    assert (True, False, False, False, "pbkdf2_sha256$1000$") == (
        verify_password("s3cret pass", encoded),
        verify_password("s3cret pasS", encoded),
        verify_password("s3cret pass", "pbkdf2_sha256$1000$!!$??"),
        verify_password("s3cret pass", "plain"),
        encoded[: len("pbkdf2_sha256$1000$")],
    )
