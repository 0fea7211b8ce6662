"""`ivr-survey report` as text: aligned columns, in the reader's language and digits."""

from __future__ import annotations

import pytest

from ivr.adapters.i18n import Reader
from ivr.admin.report_text import format_report, language_from_environment
from ivr.core.nps import summarize
from storage.reports import NpsReport, QuestionNps

REPORT = NpsReport(
    since=None,
    until=None,
    questions=(
        QuestionNps(
            question="agent",
            overall=summarize([10, 10, 8, 8, 0, 0]),
            by_agent={"Alice": summarize([10, 10]), None: summarize([0])},
            by_queue={"sales": summarize([10, 10, 8])},
        ),
        QuestionNps(question="company", overall=summarize([]), by_agent={}, by_queue={}),
    ),
)


def test_the_report_is_an_aligned_table_with_dash_for_no_answers() -> None:
    """NPS with one decimal; '-' where nobody answered; unnamed groups say (none)."""
    expected = (
        "question  group         n  promoters  passives  detractors     NPS\n"
        "agent     all           6          2         2           2     0.0\n"
        "agent     agent Alice   2          2         0           0   100.0\n"
        "agent     agent (none)  1          0         0           1  -100.0\n"
        "agent     queue sales   3          2         1           0    66.7\n"
        "company   all           0          0         0           0       -\n"
    )

    assert expected == format_report(REPORT, Reader())


def test_the_report_in_russian_has_russian_headings_and_a_decimal_comma() -> None:
    lines = format_report(REPORT, Reader.of("ru")).splitlines()

    assert ("вопрос", "66,7") == (lines[0].split()[0], lines[4].split()[-1])


def test_the_report_in_persian_writes_persian_digits() -> None:
    """Names stay as stored; the figures are written ۰-۹ with the Persian decimal mark."""
    line = format_report(REPORT, Reader.of("fa")).splitlines()[4]

    assert (True, "۶۶٫۷") == ("sales" in line, line.split()[-1])


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"LANG": "fa_IR.UTF-8"}, "fa"),
        ({"LANG": "ru_RU.UTF-8", "LC_ALL": "es_ES.UTF-8"}, "es"),
        ({"LANGUAGE": "de:eu", "LANG": "en_US.UTF-8"}, "eu"),
        ({"LANG": "C.UTF-8"}, None),
        ({}, None),
    ],
)
def test_the_language_comes_from_the_locale_in_gettexts_order(
    environment: dict[str, str], expected: str | None
) -> None:
    assert expected == language_from_environment(environment)
