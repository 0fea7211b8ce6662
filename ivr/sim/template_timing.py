"""Virtual time between replayed events: captured gaps, hold and talk rescaled.

A replay lasts what its plan says, not what the lab call lasted, so the gaps
inside hold and talk stretches are kept as shares of the stretch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

from ivr.sim.template_event import TemplateEvent, TimedEvent

ANCHORS = frozenset({"QueueCallerJoin", "AgentConnect", "AgentComplete", "QueueCallerAbandon"})


def timed_as_captured(events: Iterable[TemplateEvent]) -> tuple[TimedEvent, ...]:
    """Captured gaps kept as they were (outside hold and talk stretches)."""
    timed: list[TimedEvent] = []
    previous: float | None = None
    for event in events:
        timed.append(TimedEvent(event, 0.0 if previous is None else max(0.0, event.at - previous)))
        previous = event.at
    return tuple(timed)


def cumulative_times(events: Sequence[TemplateEvent]) -> list[tuple[float, float, float]]:
    """Cumulative (fixed, hold, talk) virtual time of each pre-AGI event."""
    anchors = [i for i, e in enumerate(events) if e.name in ANCHORS]
    kinds: dict[int, tuple[str, int, int]] = {}
    for a, b in itertools.pairwise(anchors):
        first, last = events[a].name, events[b].name
        kind = ""
        if first == "QueueCallerJoin" and last in ("AgentConnect", "QueueCallerAbandon"):
            kind = "hold"
        elif first == "AgentConnect" and last == "AgentComplete":
            kind = "talk"
        if kind:
            for j in range(a + 1, b + 1):
                kinds[j] = (kind, a, b)
    totals: list[tuple[float, float, float]] = []
    fixed = hold = talk = 0.0
    for j, event in enumerate(events):
        if j:
            gap = max(0.0, event.at - events[j - 1].at)
            if j in kinds:
                kind, a, b = kinds[j]
                span = events[b].at - events[a].at
                share = gap / span if span > 0 else (1.0 if j == b else 0.0)
                if kind == "hold":
                    hold += share
                else:
                    talk += share
            else:
                fixed += gap
        totals.append((fixed, hold, talk))
    return totals


def keep_timed(
    events: Sequence[TemplateEvent],
    totals: Sequence[tuple[float, float, float]],
    keep: Callable[[TemplateEvent], bool],
) -> tuple[TimedEvent, ...]:
    timed: list[TimedEvent] = []
    previous = (0.0, 0.0, 0.0)
    for event, total in zip(events, totals, strict=True):
        if not keep(event):
            continue
        if timed:
            timed.append(
                TimedEvent(
                    event,
                    total[0] - previous[0],
                    total[1] - previous[1],
                    total[2] - previous[2],
                )
            )
        else:
            timed.append(TimedEvent(event, 0.0))
        previous = total
    return tuple(timed)
