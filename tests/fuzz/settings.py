"""Shared Hypothesis settings for the fuzz suite: reproducible in CI and kept short.

`derandomize` makes every run try the same examples (CI failures reproduce
locally); no example database is written. Example counts are sized so the
whole suite runs in well under a minute on two busy cores.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
