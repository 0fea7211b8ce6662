"""Per-queue survey choices: `[queues.<name>]` tables of the configuration file.

The main loader knows flat sections of str/int/float keys only; a queue table
is the same kind of flat section, one per queue, so it is parsed here with the
same rule (one problem line per bad key) and handed back as a mapping. A queue
without a table, or a key left out, takes the `[survey]` default.

    [queues.support]
    questions = "csat, fcr, ces"   # in the caller's order
    language = "es"                # the queue's default language
    language_mode = "queue"        # channel | queue | choose
    comment = "detractors"         # off | all | detractors
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from ivr.core.questions import parse_names

COMMENT_MODES = ("off", "all", "detractors")
LANGUAGE_MODES = ("channel", "queue", "choose")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class QueueSurvey:
    """One queue's choices; "" means "as in [survey]"."""

    questions: str = ""
    language: str = ""
    language_mode: str = ""
    comment: str = ""


def check_choices(*, questions: str, language: str, language_mode: str, comment: str) -> list[str]:
    """Problems with a set of survey choices (shared by [survey] and each queue)."""
    problems: list[str] = []
    if questions:
        problems.extend(f"questions: {problem}" for problem in parse_names(questions)[1])
    if language and not _LANGUAGE.match(language):
        problems.append(f"language: {language!r} is not an Asterisk language code (like en, es)")
    if language_mode and language_mode not in LANGUAGE_MODES:
        problems.append(
            f"language_mode: {language_mode!r} is not one of {', '.join(LANGUAGE_MODES)}"
        )
    if comment and comment not in COMMENT_MODES:
        problems.append(f"comment: {comment!r} is not one of {', '.join(COMMENT_MODES)}")
    return problems


def parse_queues(raw: Any, problems: list[str]) -> Mapping[str, QueueSurvey]:
    """`document["queues"]` -> queue name -> choices; appends one line per bad key."""
    if not isinstance(raw, dict):
        problems.append("[queues] must hold one [queues.<name>] table per queue")
        return MappingProxyType({})
    known = tuple(f.name for f in fields(QueueSurvey))
    queues: dict[str, QueueSurvey] = {}
    for name, table in raw.items():
        where = f"[queues.{name}]"
        if not isinstance(table, dict):
            problems.append(f"{where} must be a table")
            continue
        values: dict[str, str] = {}
        for key, value in table.items():
            if key not in known:
                problems.append(f"{where} {key}: unknown key (known: {', '.join(known)})")
            elif not isinstance(value, str):
                problems.append(f"{where} {key}: expected a string, got {value!r}")
            else:
                values[key] = value
        choices = QueueSurvey(**values)
        problems.extend(f"{where} {problem}" for problem in check_choices(**values_of(choices)))
        queues[name] = choices
    return MappingProxyType(queues)


def values_of(choices: QueueSurvey) -> dict[str, str]:
    return {f.name: getattr(choices, f.name) for f in fields(QueueSurvey)}
