"""Which language and calendar a browser reads the dashboard in, and remembering it.

`?lang=` wins (the picker's links), then the cookie it leaves, then the
browser's Accept-Language, then `[web] language`. A choice made with `?lang=`
or `?calendar=` is kept in a cookie for a year, so the dashboard stays in it on
the next visit and on the links that do not repeat it. JSON, CSV and metrics
never depend on any of this: machines read them.
"""

from __future__ import annotations

from aiohttp import web

from ivr.adapters.i18n import CALENDARS, Reader, choose, from_accept_language, supported

LANGUAGE_COOKIE = "ivr_survey_lang"
CALENDAR_COOKIE = "ivr_survey_calendar"
REMEMBER_SECONDS = 365 * 24 * 3600
READER: web.RequestKey[Reader] = web.RequestKey("reader", Reader)


def reader_for(request: web.Request, default: str) -> Reader:
    language = choose(
        (
            request.query.get("lang"),
            request.cookies.get(LANGUAGE_COOKIE),
            from_accept_language(request.headers.get("Accept-Language")),
        ),
        default,
    )
    calendar = request.query.get("calendar") or request.cookies.get(CALENDAR_COOKIE)
    return Reader.of(language, calendar)


def remember(request: web.Request, response: web.StreamResponse) -> None:
    """Keeps a choice the reader just made with the picker."""
    language = supported(request.query.get("lang"))
    if language is not None:
        _keep(response, LANGUAGE_COOKIE, language)
    calendar = request.query.get("calendar")
    if calendar in CALENDARS:
        _keep(response, CALENDAR_COOKIE, calendar)


def _keep(response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name, value, max_age=REMEMBER_SECONDS, path="/", samesite="Lax", httponly=True
    )
