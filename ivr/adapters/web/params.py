"""Query parameters: declared once, validated strictly, documented from the same list.

Each endpoint lists its `Param`s; `parse` checks a request against that list and
`ivr.adapters.web.openapi` documents the same list, so the OpenAPI document cannot
promise a parameter the handler refuses (or the other way round). Anything
unexpected - an unknown or repeated parameter, a number with spaces or
non-ASCII digits, a NUL byte in a name - is a `BadRequest` (HTTP 400) here,
before it can reach the database and come back as a 500.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from ivr.core.policy import parse_zone
from ivr.ports import Period, ResponseCursor

ParamKind = Literal["date", "int", "float", "choice", "name", "cursor", "zone"]

EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
MAX_PERIOD_DAYS = 3660
DEFAULT_PERIOD_DAYS = 30
MAX_NAME_LENGTH = 200
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_INTEGER = re.compile(r"^-?[0-9]{1,9}$")
_FLOAT = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,4})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
_MICROS = re.compile(r"^[0-9]{1,17}$")
# IANA names: letters, digits, '_', '+', '-' and '/' (America/Argentina/Buenos_Aires).
ZONE_PATTERN = r"^[A-Za-z0-9_+/-]{1,64}$"
_ZONE = re.compile(ZONE_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadRequest(Exception):
    """A request the API refuses; the message names the parameter and the rule."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: ParamKind
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    default: str | int | float | None = None


Value = str | int | float | date | ResponseCursor | ZoneInfo


@dataclass(frozen=True, slots=True)
class Parsed:
    """Validated values by name; a missing parameter is absent unless it has a default."""

    values: Mapping[str, Value]

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, str)
        return value

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, int)
        return value

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, float | int)
        return None if value is None else float(value)

    def day(self, name: str) -> date | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, date)
        return value

    def zone(self, name: str) -> ZoneInfo | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, ZoneInfo)
        return value

    def cursor(self, name: str) -> ResponseCursor | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, ResponseCursor)
        return value

    def period(self, today: date) -> Period:
        """`from`..`to`, both included; by default the 30 days ending today."""
        last = self.day("to") or today
        first = self.day("from") or (last - timedelta(days=DEFAULT_PERIOD_DAYS - 1))
        if first > last:
            raise BadRequest(f"from: {first} is after to: {last}")
        if (last - first).days >= MAX_PERIOD_DAYS:
            raise BadRequest(f"from/to: a period is at most {MAX_PERIOD_DAYS} days")
        return Period(first=max(first, EARLIEST), last=last)


def parse(query: MultiMapping[str], params: Sequence[Param]) -> Parsed:
    """Validate every query parameter against the endpoint's declared list."""
    known = {param.name: param for param in params}
    values: dict[str, Value] = {}
    for name in query:
        if name not in known:
            listed = ", ".join(known) or "none"
            raise BadRequest(f"{_shown(name)}: unknown parameter (known: {listed})")
    for param in params:
        given = query.getall(param.name, [])
        if len(given) > 1:
            raise BadRequest(f"{param.name}: given more than once")
        if given:
            values[param.name] = _convert(param, given[0])
        elif param.default is not None:
            values[param.name] = param.default
    return Parsed(values)


def _shown(text: str) -> str:
    """A parameter name or value quoted for an error message, safely shortened."""
    return repr(text[:40])


def _convert(param: Param, raw: str) -> Value:
    if param.kind == "date":
        return _date(param, raw)
    if param.kind == "int":
        if not _INTEGER.match(raw):
            raise BadRequest(f"{param.name}: {_shown(raw)} is not a whole number")
        number = int(raw)
        _check_range(param, number)
        return number
    if param.kind == "float":
        if not _FLOAT.match(raw):
            raise BadRequest(f"{param.name}: {_shown(raw)} is not a number like 2 or 2.5")
        decimal = float(raw)
        _check_range(param, decimal)
        return decimal
    if param.kind == "choice":
        if raw not in param.choices:
            raise BadRequest(
                f"{param.name}: {_shown(raw)} is not one of {', '.join(param.choices)}"
            )
        return raw
    if param.kind == "name":
        return _name(param, raw)
    if param.kind == "zone":
        return _zone(param, raw)
    return decode_cursor(param.name, raw)


def _check_range(param: Param, number: float) -> None:
    if (param.minimum is not None and number < param.minimum) or (
        param.maximum is not None and number > param.maximum
    ):
        raise BadRequest(
            f"{param.name}: {number:g} is outside {param.minimum:g}..{param.maximum:g}"
            if param.minimum is not None and param.maximum is not None
            else f"{param.name}: {number:g} is out of range"
        )


def _date(param: Param, raw: str) -> date:
    if not _DATE.match(raw):
        raise BadRequest(f"{param.name}: {_shown(raw)} is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{param.name}: {_shown(raw)} is not a calendar date") from None
    if not EARLIEST <= day <= LATEST:
        raise BadRequest(f"{param.name}: {day} is outside {EARLIEST}..{LATEST}")
    return day


def _name(param: Param, raw: str) -> str:
    if not raw or len(raw) > MAX_NAME_LENGTH:
        raise BadRequest(f"{param.name}: must be 1 to {MAX_NAME_LENGTH} characters")
    if _CONTROL.search(raw):
        raise BadRequest(f"{param.name}: control characters are not allowed")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{param.name}: not valid UTF-8") from None
    return raw


def _zone(param: Param, raw: str) -> ZoneInfo:
    """Checked against the pattern first: ZoneInfo would otherwise be asked
    to open whatever path a request spells."""
    problem = BadRequest(f"{param.name}: {_shown(raw)} is not an IANA time zone (like Asia/Tehran)")
    if not _ZONE.match(raw) or ".." in raw or raw.startswith("/"):
        raise problem
    try:
        return parse_zone(raw)
    except ValueError:
        raise problem from None


def encode_cursor(cursor: ResponseCursor) -> str:
    """An opaque page token: the last row's start (µs since the epoch) and id."""
    micros = (cursor.started_at - _EPOCH) // timedelta(microseconds=1)
    text = f"{micros}:{cursor.survey_id}".encode("ascii")
    return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


def decode_cursor(name: str, raw: str) -> ResponseCursor:
    problem = BadRequest(f"{name}: not a page cursor from this API")
    if not _CURSOR.match(raw):
        raise problem
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise problem from None
    micros, _, survey = text.partition(":")
    if not _INTEGER.match(survey) or not _MICROS.match(micros):
        raise problem
    survey_id = int(survey)
    try:
        started_at = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise problem from None
    if survey_id < 1 or not EARLIEST <= started_at.date() <= LATEST:
        raise problem
    return ResponseCursor(started_at=started_at, survey_id=survey_id)
