"""A call's own time: compressed while replaying, real while the survey runs.

Asterisk reports hold, talk and CDR durations from its clock. The replay
squeezes a ten-minute conversation into `10 min * time_scale` of wall time,
so each call keeps a virtual clock that advances by the *reported* seconds
between replayed events and at real speed during the FastAGI session (whose
prompts and key presses are not scaled). Everything a real PBX would compute
from its clock (HoldTime, TalkTime, Cdr times, Duration in CoreShowChannels)
is read from here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class CallClock:
    """Virtual seconds since the call started, and the epoch they map to."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        self._mark = 0.0
        self._real = time.monotonic()
        self._rate = 1.0
        self._cap: float | None = None

    def set(self, virtual: float, rate: float, cap: float | None = None) -> None:
        """From now on, virtual time is `virtual` plus real time times `rate`, up to `cap`."""
        self._mark = virtual
        self._real = time.monotonic()
        self._rate = rate
        self._cap = cap

    def now(self) -> float:
        value = self._mark + (time.monotonic() - self._real) * self._rate
        return value if self._cap is None else min(value, self._cap)

    def epoch_now(self) -> float:
        return self.epoch + self.now()

    def datetime(self, virtual: float | None = None) -> str:
        """CEL/CDR time format; the lab's Asterisk ran in UTC, so these are UTC."""
        at = self.epoch + (self.now() if virtual is None else virtual)
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def event_tv(epoch: float) -> str:
    """Security events' `EventTV`: `2026-11-22T06:37:33.396+0000`."""
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
