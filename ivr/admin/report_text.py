"""`ivr-survey report` as text in the reader's language: `--lang`, else the locale.

A manager in Moscow running the report in a Russian shell reads Russian
headings and Russian number formats; a script piping it still gets one line
per question and group in fixed columns (and `export` for data a machine reads).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ivr.adapters.i18n import N_, Reader, supported
from ivr.core.nps import NpsSummary
from storage.reports import NpsReport

LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
HEADER = (
    N_("question"),
    N_("group"),
    N_("n"),
    N_("promoters"),
    N_("passives"),
    N_("detractors"),
    N_("NPS"),
)
QUESTION_NAMES = {"agent": N_("agent"), "company": N_("company")}
TEXT_COLUMNS = 2  # question and group read from the line's start, numbers align at its end


def language_from_environment(environment: Mapping[str, str] | None = None) -> str | None:
    """The first language the locale variables name that we speak, in gettext's order
    (LANGUAGE may list several, `fa:en`); None for C, POSIX or an unknown one."""
    values = os.environ if environment is None else environment
    for name in LOCALE_VARIABLES:
        for tag in values.get(name, "").split(":"):
            language = supported(tag.split(".")[0])
            if language is not None:
                return language
    return None


def _group(reader: Reader, kind: str, name: str | None) -> str:
    if kind == "all":
        return reader.gettext("all")
    shown = name if name is not None else reader.gettext("(none)")
    return f"{reader.gettext(kind)} {shown}"


def _line(reader: Reader, question: str, group: str, summary: NpsSummary) -> tuple[str, ...]:
    nps = "-" if summary.nps is None else reader.decimal(summary.nps)
    counts = (summary.n, summary.promoters, summary.passives, summary.detractors)
    return (question, group, *(reader.integer(count) for count in counts), nps)


def format_report(report: NpsReport, reader: Reader) -> str:
    """A plain-text table, one line per question and group, columns aligned."""
    lines: list[tuple[str, ...]] = [tuple(reader.gettext(title) for title in HEADER)]
    for entry in report.questions:
        question = reader.gettext(QUESTION_NAMES.get(entry.question, entry.question))
        groups: list[tuple[str, str | None, NpsSummary]] = [("all", None, entry.overall)]
        groups += [("agent", name, summary) for name, summary in entry.by_agent.items()]
        groups += [("queue", name, summary) for name, summary in entry.by_queue.items()]
        for kind, name, summary in groups:
            lines.append(_line(reader, question, _group(reader, kind, name), summary))
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADER))]

    def render(line: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(width) if column < TEXT_COLUMNS else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(render(line) for line in lines) + "\n"


WORDS = (N_("all"), N_("(none)"), N_("queue"))
"""Words `_group` translates by value, listed so the catalogs hold them."""
