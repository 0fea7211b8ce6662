"""The reading side's languages: translated messages, numbers and dates per locale.

Managers read the dashboard and `ivr-survey report` in their own language. The
messages live in gettext catalogs under `ivr/adapters/locale/` (edited as `.po`
files, compiled to `.mo` by the build; see README "Translations"), so a
translator never reads code; a string a catalog lacks falls back to English.
Numbers and dates are written by Babel in each locale's own way. Persian gets
two things Babel does not do: Persian digits (Babel gives the separators but
keeps Latin digits) and the Solar Hijri calendar (jdatetime), which is what an
Iranian manager reads a date in.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import jdatetime
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from ivr.config.settings import READING_LANGUAGES

LANGUAGES = READING_LANGUAGES

NAMES = {"en": "English", "fa": "فارسی", "ru": "Русский", "eu": "Euskara", "es": "Español"}
"""Each language in its own name, as a picker shows it."""

CALENDARS = ("gregorian", "persian")
DOMAIN = "ivr_survey"
CATALOGS = Path(__file__).parent / "locale"
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
LATIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention extractors look for
    """Marks a message for the catalogs where it is defined; it is translated where shown."""
    return message


@cache
def _translations(language: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, CATALOGS, languages=[language], fallback=True)


def supported(language: str | None) -> str | None:
    """The language we speak for a tag like `fa`, `fa-IR` or `ES_es`, else None."""
    if not language:
        return None
    primary = language.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best language we speak in an Accept-Language header, by its q-values."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = supported(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def choose(candidates: Iterable[str | None], default: str = "en") -> str:
    """The first candidate we speak; the default otherwise."""
    for candidate in candidates:
        language = supported(candidate)
        if language is not None:
            return language
    return supported(default) or "en"


@dataclass(frozen=True, slots=True)
class Reader:
    """One reader's language and calendar: how every message, number and date is written."""

    language: str = "en"
    calendar: str = "gregorian"
    _locale: Locale = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_locale", Locale.parse(self.language))

    @classmethod
    def of(cls, language: str, calendar: str | None = None) -> Reader:
        """Persian readers get Solar Hijri dates unless they ask for Gregorian."""
        if calendar not in CALENDARS:
            calendar = "persian" if language == "fa" else "gregorian"
        return cls(language, calendar)

    @property
    def direction(self) -> str:
        return "rtl" if self._locale.text_direction == "rtl" else "ltr"

    def gettext(self, message: str) -> str:
        return _translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return _translations(self.language).ngettext(singular, plural, count)

    def digits(self, text: str) -> str:
        """Text holding figures (a bucket's "0-30 s"), with this language's digits."""
        return text.translate(PERSIAN_DIGITS) if self.language == "fa" else text

    def _symbols(self, written: str) -> str:
        """The locale's own minus and percent signs (Persian: a minus that stays on the
        left of the figure in right-to-left text, and ٪), which Babel's patterns skip."""
        symbols = self._locale.number_symbols[self._locale.default_numbering_system]
        if written.startswith("-"):
            written = symbols["minusSign"] + written[1:]
        return self.digits(written.replace("%", symbols["percentSign"]))

    def decimal(self, value: float, decimals: int = 1) -> str:
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        written = format_decimal(
            value, format=pattern, locale=self._locale, numbering_system="default"
        )
        return self._symbols(written)

    def integer(self, value: int) -> str:
        return self.decimal(value, 0)

    def percent(self, value: float) -> str:
        """A rate already in percent (12.5 for 12.5 %), with the locale's sign and place."""
        written = format_percent(
            value / 100, format="#,##0.0%", locale=self._locale, numbering_system="default"
        )
        return self._symbols(written)

    def _date(self, day: date, pattern: str, solar: str) -> str:
        """`pattern` is Babel's for the Gregorian calendar, `solar` the same shape
        for the Solar Hijri one ("{day} {month} {year}")."""
        if self.calendar == "persian":
            hijri = jdatetime.date.fromgregorian(date=day)
            month = jdatetime.date.j_months_fa[hijri.month - 1]
            return self.digits(solar.format(day=hijri.day, month=month, year=hijri.year))
        return self.digits(format_date(day, format=pattern, locale=self._locale))

    def day(self, day: date) -> str:
        """A date as this reader reads it: "2 Mar 2025", "۱۲ اسفند ۱۴۰۳"."""
        return self._date(day, "medium", "{day} {month} {year}")

    def short_day(self, day: date) -> str:
        """Day and month, for a chart's axis."""
        return self._date(day, "d MMM", "{day} {month}")

    def month(self, day: date) -> str:
        return self._date(day, "LLL y", "{month} {year}")


def latin_digits(text: str) -> str:
    """Persian digits back to 0-9, for reading a figure written by `Reader`."""
    return text.translate(LATIN_DIGITS)
