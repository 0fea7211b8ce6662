"""Hostile HTTP input on every endpoint: raw query strings, cursors, huge values, headers.

Whatever arrives, the answer is a 2xx/3xx, or a 4xx with a clear error (JSON
under /api/), never a 5xx. Runs on SQLite and PostgreSQL (a NUL byte or an
out-of-range integer reaching PostgreSQL is the classic 500). Derandomized so
CI tries the same inputs every time.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from ivr.adapters.web.openapi import SESSION_COOKIE
from ivr.adapters.web.pages import PAGES
from ivr.adapters.web.spec import REPORTS
from tests.helpers.web import ADMIN

Client = TestClient[web.Request, web.Application]

API_PATHS = [endpoint.path for endpoint in REPORTS]
PATHS = [*API_PATHS, *PAGES, "/login", "/healthz", "/metrics", "/api/openapi.json", "/"]
NAMES = sorted({param.name for endpoint in REPORTS for param in endpoint.params} | {"next"})

HTTP_FUZZ = settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

any_text = st.text(max_size=40)
# What an HTTP client can put in a header at all (no control characters).
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
numbers = st.one_of(
    st.integers().map(str),
    st.integers(min_value=10**9, max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e308", "-0", "0x10", "٣", "²", "\uff11\uff10", "9" * 400, "nan", "inf"]),
)
dates = st.one_of(
    st.dates().map(lambda day: day.isoformat()),
    st.sampled_from(["0000-00-00", "9999-99-99", "2025-02-29", "2025-03-01T00:00", "-2025-01-01"]),
)
cursors = st.one_of(
    st.binary(max_size=48).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    st.tuples(st.integers(), st.integers()).map(
        lambda pair: base64.urlsafe_b64encode(f"{pair[0]}:{pair[1]}".encode()).decode()
    ),
    any_text,
)
values = st.one_of(any_text, numbers, dates, cursors, st.text(min_size=300, max_size=5000))
escaped_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(NAMES), any_text), values), max_size=5
).map(lambda pairs: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs))
raw_queries = st.one_of(
    escaped_pairs,
    st.lists(
        st.sampled_from([*"abz09=&%;+-_.~/?[]@!$'()*,:", "%00", "%ff", "%c3%28", "limit="]),
        max_size=40,
    ).map("".join),
)


def assert_clear_answer(status: int, content_type: str, body: bytes, path: str) -> None:
    assert status < 500, (path, status, body[:300])
    if status >= 400 and path.startswith("/api/"):
        assert content_type == "application/json", (path, status, body[:300])
        assert b'"message"' in body


@HTTP_FUZZ
@given(path=st.sampled_from(PATHS), query=raw_queries)
async def test_any_raw_query_string_on_any_endpoint_is_never_a_5xx(
    client: Client, path: str, query: str
) -> None:
    """Percent-escapes, invalid UTF-8, NUL bytes, huge numbers and cursors: 4xx at worst."""
    async with client.get(
        URL(f"{path}?{query}", encoded=True), headers=ADMIN, allow_redirects=False
    ) as reply:
        body = await reply.read()
        assert_clear_answer(reply.status, reply.content_type, body, path)


@HTTP_FUZZ
@given(
    path=st.sampled_from(PATHS),
    authorization=st.one_of(header_text, header_text.map(lambda token: f"Bearer {token}")),
    cookie=any_text,
)
async def test_any_credentials_header_is_a_401_or_a_redirect_never_a_5xx(
    client: Client, path: str, authorization: str, cookie: str
) -> None:
    """Garbage tokens and session cookies are refused cleanly."""
    headers = {
        "Authorization": authorization,
        "Cookie": f"{SESSION_COOKIE}=" + quote(cookie, safe=""),
    }
    async with client.get(path, headers=headers, allow_redirects=False) as reply:
        body = await reply.read()
        assert_clear_answer(reply.status, reply.content_type, body, path)


@settings(HTTP_FUZZ, max_examples=8)
@given(username=st.one_of(any_text, st.text(min_size=1000, max_size=3000)), password=any_text)
async def test_any_login_form_is_refused_with_a_4xx(
    client: Client, username: str, password: str
) -> None:
    """Wrong or absurd credentials on the login form: 400 or 401, never a 5xx."""
    form = {"username": username, "password": password, "next": username}
    async with client.post("/login", data=form, allow_redirects=False) as reply:
        await reply.read()
        assert reply.status in (400, 401)
