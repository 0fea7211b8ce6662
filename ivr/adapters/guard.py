"""Who may open a FastAGI session, and how often a refusal is worth a log line.

Pure (the clock is passed in), so the rules are table tests. The FastAGI
server asks `SessionGuard.refusal` for every new connection before reading a
byte: only Asterisk hosts should ever connect, and a flood (a port scan, a
misrouted dialplan looping) must neither exhaust the process nor fill the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address

Network = IPv4Network | IPv6Network

# A refused address is named in the log at most once per this many seconds.
WARNING_INTERVAL = 60.0
# Addresses remembered for rate limiting; beyond it the oldest are forgotten.
MAX_REMEMBERED = 4096


def address_allowed(address: str, networks: Sequence[Network]) -> bool:
    """Whether `address` (as the socket reports it) lies in one of `networks`.

    An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`; it is
    judged by its IPv4 address, which is what an admin writes in the list.
    """
    try:
        parsed = ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in networks)


def since_last(suppressed: int) -> str:
    """The tail of a rate-limited line: how many repeats it stood for, if any."""
    return f" ({suppressed} more since the last warning)" if suppressed else ""


@dataclass
class RateLimitedWarnings:
    """Say a repeated thing once per `interval` per key, with how often it recurred since."""

    clock: Callable[[], float]
    interval: float = WARNING_INTERVAL
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def due(self, key: str) -> int | None:
        """None: stay quiet; otherwise log now, mentioning this many suppressed repeats."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if len(self._last) >= MAX_REMEMBERED and key not in self._last:
            oldest = min(self._last, key=self._last.__getitem__)
            del self._last[oldest]
            self._suppressed.pop(oldest, None)
        self._last[key] = now
        return self._suppressed.pop(key, 0)


@dataclass(frozen=True, slots=True)
class SessionGuard:
    """The admission rules: an allow-list of networks and a cap on open sessions.

    `networks` None admits every address (the server's own tests, the demo).
    """

    networks: tuple[Network, ...] | None = None
    max_sessions: int | None = None

    def refusal(self, address: str, open_sessions: int) -> str | None:
        """Why a connection from `address` is refused now, or None to admit it."""
        if self.networks is not None and not address_allowed(address, self.networks):
            return "address not in [agi] allowed_addresses"
        if self.max_sessions is not None and open_sessions >= self.max_sessions:
            return f"{open_sessions} sessions already open ([agi] max_sessions)"
        return None
