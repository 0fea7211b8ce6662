"""The questions a survey can ask, by name: their keypad scales and stored values.

Pure data and parsing, shared by the config loader (which names are valid in
`[queues.<name>] questions`) and the service (which builds the survey spec).
The names are what `answers.question` stores, so reports can tell an NPS
answer ("agent", "company") from any other kind and never mix them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ivr.core.survey import Question


@dataclass(frozen=True, slots=True)
class Scale:
    """Keys `low`..`high` answer; `values` (one per key) is what is stored, when given."""

    low: int
    high: int
    values: tuple[int, ...] = ()


NPS_QUESTIONS = ("agent", "company")
"""The two 0-10 recommendation questions; the only ones NPS reports count."""

SCALES: Mapping[str, Scale] = MappingProxyType(
    {
        "agent": Scale(0, 10),
        "company": Scale(0, 10),
        "csat": Scale(1, 5),
        # First-call resolution: 1 = yes, 2 = no, stored as 1/0 so an average is a rate.
        "fcr": Scale(1, 2, (1, 0)),
        "ces": Scale(1, 7),
    }
)

DEFAULT_QUESTIONS = NPS_QUESTIONS
_SEPARATORS = re.compile(r"[\s,]+")


def question(
    name: str, prompt: str, *, max_attempts: int | None = None, invalid: str = ""
) -> Question:
    """The survey question `name` (one of SCALES) with its prompt.

    `invalid` is the prompt for a key outside the scale ("" for the survey's).
    """
    scale = SCALES[name]
    return Question(
        name,
        prompt,
        low=scale.low,
        high=scale.high,
        values=scale.values,
        max_attempts=max_attempts,
        invalid=invalid,
    )


def parse_names(text: str) -> tuple[tuple[str, ...], list[str]]:
    """`"csat, fcr ces"` -> the names in order, and one problem per bad or repeated name."""
    names: list[str] = []
    problems: list[str] = []
    for name in (part for part in _SEPARATORS.split(text.strip()) if part):
        if name not in SCALES:
            problems.append(f"{name!r} is not a question (known: {', '.join(SCALES)})")
        elif name in names:
            problems.append(f"{name!r} is asked twice")
        else:
            names.append(name)
    if not names and not problems:
        problems.append("at least one question is needed")
    return tuple(names), problems
