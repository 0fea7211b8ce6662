"""How many failed sign-ins a client address and a user name may make.

Each password check costs ~0.1 s of CPU on purpose, and they run one at a time,
so unlimited guessing both tries passwords and makes real users wait. Failures
are counted in a sliding window per address and per user name; past a limit
the form answers at once without checking the password. One check at a time
per address keeps a crowd of parallel guessers from one machine from filling
the queue in front of everyone else. The tables are bounded: past
MAX_TRACKED keys the oldest is forgotten, so a flood of invented names cannot
grow memory.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ivr.adapters.i18n import N_

MAX_TRACKED = 10_000
ADDRESS = "address"
USER = "user"
BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a sign-in was refused before its password was checked."""

    reason: str
    retry_after: int

    @property
    def message(self) -> tuple[str, dict[str, str]]:
        """The English message and its values, for the page to translate."""
        if self.reason == BUSY:
            return N_(
                "a sign-in from this address is already being checked; try again in a moment"
            ), {}
        minutes = str(max(1, round(self.retry_after / 60)))
        if self.reason == ADDRESS:
            template = N_(
                "too many failed sign-ins from this address; try again in %(minutes)s minute(s)"
            )
        else:
            template = N_(
                "too many failed sign-ins from this user; try again in %(minutes)s minute(s)"
            )
        return template, {"minutes": minutes}


class LoginLimiter:
    """Counts failures; says whether the next attempt may check a password."""

    def __init__(
        self,
        *,
        per_address: int,
        per_user: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {ADDRESS: per_address, USER: per_user}
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[str, dict[str, deque[float]]] = {ADDRESS: {}, USER: {}}
        self._checking: set[str] = set()
        self._refused = {ADDRESS: 0, USER: 0, BUSY: 0}

    def refusal(self, address: str, name: str) -> Refusal | None:
        """A refusal if this address or user is over its limit or already checking."""
        now = self._clock()
        for reason, key in ((ADDRESS, address), (USER, name)):
            recent = self._recent(reason, key, now)
            if recent is not None and len(recent) >= self._limits[reason]:
                self._refused[reason] += 1
                return Refusal(reason, int(recent[0] + self._window - now) + 1)
        if address in self._checking:
            self._refused[BUSY] += 1
            return Refusal(BUSY, 1)
        return None

    def checking(self, address: str) -> None:
        self._checking.add(address)

    def checked(self, address: str, name: str, *, succeeded: bool) -> None:
        """The password check is over; a failure counts against both keys."""
        self._checking.discard(address)
        if succeeded:
            self._failures[USER].pop(name, None)
            return
        now = self._clock()
        for reason, key in ((ADDRESS, address), (USER, name)):
            table = self._failures[reason]
            recent = self._recent(reason, key, now)
            if recent is None:
                if len(table) >= MAX_TRACKED:
                    del table[next(iter(table))]
                recent = table[key] = deque(maxlen=self._limits[reason])
            recent.append(now)

    def refused(self) -> Mapping[str, int]:
        """Sign-ins refused since start-up, by reason: for `/metrics`."""
        return dict(self._refused)

    def _recent(self, reason: str, key: str, now: float) -> deque[float] | None:
        recent = self._failures[reason].get(key)
        if recent is None:
            return None
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if not recent:
            del self._failures[reason][key]
            return None
        return recent
