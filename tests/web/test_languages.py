"""The dashboard in en, fa, ru, eu and es: chosen, remembered, and showing the same figures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import unescape

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from babel import Locale

from ivr.adapters.i18n import LANGUAGES, Reader, latin_digits
from ivr.adapters.web.language import CALENDAR_COOKIE, LANGUAGE_COOKIE
from storage.analytics import SqlReportReader
from tests.helpers.web import ADMIN, MARCH, app_for
from tests.web.webdriver import metrics

Client = TestClient[web.Request, web.Application]
PAGES: tuple[tuple[str, dict[str, str], str | None], ...] = (
    ("/dashboard", {}, "Overview"),
    ("/dashboard/agents", {}, "Agents"),
    ("/dashboard/agent", {"name": "Alice"}, None),
    ("/dashboard/queues", {}, "Queues"),
)
HTML_TAG = re.compile(r'<html lang="(?P<lang>[a-z]+)" dir="(?P<dir>rtl|ltr)">')
HEADING = re.compile(r"<h1>(?P<text>[^<]*)</h1>")
MARKS = str.maketrans("", "", "\u200e\u200f\u061c\u00a0\u202f")


async def page(
    client: Client, path: str, query: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> tuple[int, str]:
    async with client.get(path, params=query, headers={**ADMIN, **(headers or {})}) as reply:
        return reply.status, await reply.text()


def plain(text: str, language: str) -> str:
    """A figure as the English page writes it, from how `language` writes it."""
    reader = Reader.of(language)
    if text == reader.gettext("n/a"):
        return "n/a"
    locale = Locale.parse(language)
    written = latin_digits(text).translate(MARKS).replace("\u2212", "-")
    for system in {locale.default_numbering_system, "latn"}:
        table = locale.number_symbols[system]
        written = written.replace(table["group"], "").replace(table["decimal"], ".")
        written = written.replace(table["percentSign"], "%")
    return written


def english(text: str) -> str:
    return "n/a" if text == "n/a" else text.replace(",", "")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("path", "params", "title"), PAGES)
async def test_every_page_speaks_every_language_with_the_same_figures(
    client: Client, language: str, path: str, params: dict[str, str], title: str | None
) -> None:
    """The html tag names the language and direction, the heading is translated, and
    every figure equals the English page's figure once read back from the locale's digits."""
    status, shown = await page(client, path, {"lang": language, **params, **MARCH})
    _, reference = await page(client, path, {"lang": "en", **params, **MARCH})
    reader = Reader.of(language)

    tag = HTML_TAG.search(shown)
    heading = HEADING.search(shown)
    assert tag is not None
    assert heading is not None
    expected_heading = reader.gettext(title) if title else params["name"]
    assert (200, language, reader.direction, expected_heading) == (
        status,
        tag["lang"],
        tag["dir"],
        unescape(heading["text"]),
    )
    english_figures = {name: english(value) for name, value in metrics(reference).items()}
    local_figures = {name: plain(value, language) for name, value in metrics(shown).items()}
    assert english_figures == local_figures


async def test_persian_is_right_to_left_with_persian_digits_and_solar_hijri_dates(
    client: Client,
) -> None:
    """1 March 2025 is 11 Esfand 1403; ?calendar=gregorian switches and is remembered."""
    _, solar = await page(client, "/dashboard", {"lang": "fa", **MARCH})
    async with client.get(
        "/dashboard",
        params={"calendar": "gregorian", **MARCH},
        headers={**ADMIN, "Accept-Language": "fa"},
    ) as reply:
        gregorian = await reply.text()
        remembered = reply.cookies[CALENDAR_COOKIE].value

    assert (True, True, True, "gregorian") == (
        'dir="rtl"' in solar,
        "۱۱ اسفند ۱۴۰۳" in solar,
        "۱ مارس ۲۰۲۵" in gregorian,
        remembered,
    )


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("fa-IR,fa;q=0.9,en;q=0.8", "fa"),
        ("de-DE,ru;q=0.5,es;q=0.7", "es"),
        ("eu", "eu"),
        ("de, *;q=0.1", "en"),
        ("", "en"),
    ],
)
async def test_the_browsers_language_is_used_when_we_speak_it(
    client: Client, accept_language: str, expected: str
) -> None:
    _, shown = await page(client, "/dashboard", MARCH, {"Accept-Language": accept_language})

    tag = HTML_TAG.search(shown)
    assert tag is not None
    assert expected == tag["lang"]


async def test_a_language_picked_once_is_remembered_over_the_browsers(client: Client) -> None:
    """?lang=ru sets a cookie; the next page, without ?lang=, stays Russian."""
    async with client.get("/dashboard", params={"lang": "ru", **MARCH}, headers=ADMIN) as reply:
        cookie = reply.cookies[LANGUAGE_COOKIE].value
    _, later = await page(client, "/dashboard/queues", MARCH, {"Accept-Language": "es"})

    tag = HTML_TAG.search(later)
    assert tag is not None
    assert ("ru", "ru") == (cookie, tag["lang"])


async def test_the_configured_language_is_the_default(history: SqlReportReader) -> None:
    async with TestClient(TestServer(app_for(history, language="eu"))) as eu_client:
        _, shown = await page(eu_client, "/dashboard", MARCH)

    tag = HTML_TAG.search(shown)
    assert tag is not None
    assert "eu" == tag["lang"]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_login_and_error_pages_speak_the_language_too(client: Client, language: str) -> None:
    reader = Reader.of(language)
    async with client.get("/login", params={"lang": language}) as reply:
        login = await reply.text()
    _, missing = await page(client, "/dashboard/nowhere", {"lang": language})

    assert (True, True) == (
        f"<title>{reader.gettext('Sign in')} · ivr-survey</title>" in unescape(login),
        reader.gettext("Cannot show this page") in unescape(missing),
    )


async def test_json_does_not_change_with_the_language(client: Client) -> None:
    """Machines read the API: the same keys and values whatever the browser asks for."""
    async with client.get(
        "/api/nps", params={"group_by": "agent", **MARCH}, headers=ADMIN
    ) as plain_reply:
        english_document = await plain_reply.json()
    async with client.get(
        "/api/nps",
        params={"group_by": "agent", **MARCH},
        headers={**ADMIN, "Accept-Language": "fa"},
    ) as persian_reply:
        persian_document = await persian_reply.json()

    assert english_document == persian_document
