"""Signing in safely: where the form may send people, one-time links, logout
that ends the session, and failed attempts that are limited."""

from __future__ import annotations

import re

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from ivr.adapters.web.auth import Authenticator, Principal, hash_password
from ivr.adapters.web.login_limits import LoginLimiter
from ivr.config.settings import WebConfig
from storage.analytics import SqlReportReader
from tests.helpers.web import ADMIN_TOKEN, PASSWORD, PASSWORD_HASH, app_for

Client = TestClient[web.Request, web.Application]


async def sign_in(client: Client, name: str, password: str, target: str = "") -> ClientResponse:
    async with client.post(
        "/login",
        data={"username": name, "password": password, "next": target},
        allow_redirects=False,
    ) as reply:
        await reply.read()
        return reply


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/ /evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "//evil.example/x",
        "///evil.example",
        "https://evil.example/",
        "https:/evil.example",
        "javascript:alert(1)",
        " /dashboard",
        "/dash\x00board",
        "/dash\u200bboard",
        "evil.example",
    ],
)
async def test_the_form_never_sends_people_off_this_site(client: Client, target: str) -> None:
    """A `next` that a browser could read as another host goes to /dashboard instead."""
    reply = await sign_in(client, "manager", PASSWORD, target)

    assert (303, "/dashboard") == (reply.status, reply.headers["Location"])


async def test_the_form_keeps_a_local_path_and_its_query(client: Client) -> None:
    """Where the user was going is kept when it is a path of this site."""
    reply = await sign_in(client, "manager", PASSWORD, "/dashboard/queues?from=2025-03-01")

    assert "/dashboard/queues?from=2025-03-01" == reply.headers["Location"]


async def test_the_login_page_does_not_echo_a_hostile_next(client: Client) -> None:
    """`/login?next=%2F%09%2Fevil.example` renders a form that goes to /dashboard."""
    async with client.get("/login?next=%2F%09%2Fevil.example") as reply:
        page = await reply.text()

    assert ['value="/dashboard"'] == re.findall(r'value="[^"]*"', page)


async def test_a_logged_out_cookie_no_longer_opens_the_dashboard(client: Client) -> None:
    """Logout ends the session on the server: a copy of the cookie is refused after it."""
    await sign_in(client, "manager", PASSWORD)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
        "ivr_survey_session"
    ].value
    async with client.get("/dashboard", allow_redirects=False) as before:
        pass
    async with client.post("/logout", allow_redirects=False):
        pass
    client.session.cookie_jar.clear()
    async with client.get(
        "/dashboard", headers={"Cookie": f"ivr_survey_session={cookie}"}, allow_redirects=False
    ) as after:
        pass

    assert (200, 303) == (before.status, after.status)


def authenticator(now: float, users: str = f"manager:admin:{PASSWORD_HASH}") -> Authenticator:
    return Authenticator(
        WebConfig(users=users, session_secret="secret-one", session_hours=1.0), clock=lambda: now
    )


def test_a_new_password_ends_the_sessions_made_with_the_old_one() -> None:
    """The cookie carries a keyed mark of the password hash; a changed hash refuses it."""
    cookie = authenticator(1000.0).session_cookie(Principal("manager", "admin"))
    other_hash = hash_password("another password", iterations=1000, salt=b"fedcba9876543210")

    assert (Principal("manager", "admin"), None) == (
        authenticator(1000.0).from_cookie(cookie),
        authenticator(1000.0, f"manager:admin:{other_hash}").from_cookie(cookie),
    )


def test_a_sign_in_link_works_once_before_it_expires_and_is_no_cookie() -> None:
    """Spent on first use; refused once expired; a link is not a session and vice versa."""
    issuer = authenticator(1000.0)
    link = issuer.sign_in_link_token("manager", valid_seconds=600)
    cookie = issuer.session_cookie(Principal("manager", "admin"))

    assert (Principal("manager", "admin"), None, None, None, None) == (
        issuer.redeem_sign_in_link(link),
        issuer.redeem_sign_in_link(link),
        authenticator(1601.0).redeem_sign_in_link(link),
        issuer.from_cookie(link),
        issuer.redeem_sign_in_link(cookie),
    )


async def test_a_sign_in_link_opens_the_dashboard_signed_in_once(
    history: SqlReportReader,
) -> None:
    """The link sets the session cookie and redirects; a second use says it is spent."""
    app = app_for(history)
    async with TestClient(TestServer(app)) as http:
        token = app[_authenticator_key()].sign_in_link_token("manager", valid_seconds=60)
        async with http.get(f"/login/link?token={token}", allow_redirects=False) as first:
            pass
        async with http.get("/dashboard", allow_redirects=False) as dashboard:
            pass
        http.session.cookie_jar.clear()
        async with http.get(f"/login/link?token={token}", allow_redirects=False) as again:
            message = await again.text()

    assert (303, "/dashboard", 200, 403, True) == (
        first.status,
        first.headers["Location"],
        dashboard.status,
        again.status,
        "expired or was used already" in message,
    )


async def test_reopening_a_spent_link_in_the_browser_it_signed_in_opens_the_dashboard(
    history: SqlReportReader,
) -> None:
    """A reload or a second tab of the printed link is no error for the person it signed in."""
    app = app_for(history)
    async with TestClient(TestServer(app)) as http:
        token = app[_authenticator_key()].sign_in_link_token("manager", valid_seconds=60)
        async with http.get(f"/login/link?token={token}", allow_redirects=False):
            pass
        async with http.get(f"/login/link?token={token}", allow_redirects=False) as again:
            pass

    assert (303, "/dashboard") == (again.status, again.headers["Location"])


def _authenticator_key() -> web.AppKey[Authenticator]:
    from ivr.adapters.web.app import AUTHENTICATOR  # noqa: PLC0415 - the app's own key

    return AUTHENTICATOR


async def test_failed_sign_ins_are_limited_per_user_and_counted(
    history: SqlReportReader,
) -> None:
    """Past the limit even the right password is refused at once, with 429 and
    Retry-After; another user still signs in; /metrics counts the refusals."""
    app = app_for(history, login_failures_per_user=3)
    async with TestClient(TestServer(app)) as http:
        failures = [(await sign_in(http, "manager", "wrong")).status for _ in range(3)]
        refused = await sign_in(http, "manager", PASSWORD)
        other = await sign_in(http, "wall", PASSWORD)
        async with http.get("/metrics", headers={"Authorization": "Bearer " + ADMIN_TOKEN}) as m:
            text = await m.text()

    assert ([401, 401, 401], 429, True, 303, True) == (
        failures,
        refused.status,
        int(refused.headers["Retry-After"]) > 0,
        other.status,
        'ivr_survey_web_logins_refused_total{reason="user"} 1' in text,
    )


def test_the_limiter_counts_per_address_forgets_after_the_window_and_checks_one_at_a_time() -> None:
    """Failures from one address under many names add up; the window frees them;
    a second check from an address already checking is refused as busy."""
    now = [0.0]
    limiter = LoginLimiter(per_address=2, per_user=5, window_seconds=60, clock=lambda: now[0])
    limiter.checked("10.0.0.9", "a", succeeded=False)
    limiter.checked("10.0.0.9", "b", succeeded=False)
    over = limiter.refusal("10.0.0.9", "c")
    elsewhere = limiter.refusal("10.0.0.8", "c")
    now[0] = 61.0
    later = limiter.refusal("10.0.0.9", "c")
    limiter.checking("10.0.0.9")
    busy = limiter.refusal("10.0.0.9", "c")

    assert ("address", None, None, "busy", {"address": 1, "user": 0, "busy": 1}) == (
        over.reason if over else None,
        elsewhere,
        later,
        busy.reason if busy else None,
        limiter.refused(),
    )
