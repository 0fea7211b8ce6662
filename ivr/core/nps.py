"""Net Promoter Score arithmetic.

Kept apart from storage so the same rules serve the SQL reports, the CLI and the
tests: promoters 9-10, passives 7-8, detractors 0-6, and NPS counted over
answered questions only (an unanswered question is None and is not a zero).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

MIN_SCORE = 0
MAX_SCORE = 10


class Category(enum.StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


def classify(score: int) -> Category:
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise ValueError(f"an NPS score is 0 to 10, not {score}")
    if score >= 9:
        return Category.PROMOTER
    if score >= 7:
        return Category.PASSIVE
    return Category.DETRACTOR


@dataclass(frozen=True, slots=True)
class NpsSummary:
    promoters: int
    passives: int
    detractors: int

    @property
    def n(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters minus % detractors, or None when nobody answered."""
        if self.n == 0:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.n


def summarize(scores: Iterable[int | None]) -> NpsSummary:
    counts = dict.fromkeys(Category, 0)
    for score in scores:
        if score is not None:
            counts[classify(score)] += 1
    return NpsSummary(
        promoters=counts[Category.PROMOTER],
        passives=counts[Category.PASSIVE],
        detractors=counts[Category.DETRACTOR],
    )
