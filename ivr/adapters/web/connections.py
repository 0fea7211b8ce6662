"""Bounds on the web server's connections: how many, and how long a request's headers may take.

aiohttp reads a request's headers for as long as the client cares to send
them, and keeps any number of connections open: 1,100 slow clients once held
every file descriptor of the process (the usual limit is 1024), so real
requests timed out and a caller's survey took 22.9 s instead of 4.2 s. Each
connection here is wrapped before aiohttp sees it: past `max_connections` a
new one is closed at once, and one whose first request's headers have not
ended within `header_timeout` is closed. Idle keep-alive connections are
closed by aiohttp itself after `idle_timeout` (its `keepalive_timeout`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from ivr.adapters.guard import RateLimitedWarnings, since_last

log = logging.getLogger(__name__)

END_OF_HEADERS = b"\r\n\r\n"
WEB_REFUSAL_REASONS = ("max_connections", "header_timeout")


class ConnectionGuard:
    """Counts open connections against a cap, and what it refused, by reason."""

    def __init__(self, *, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self._warnings = RateLimitedWarnings(time.monotonic)

    def admit(self) -> bool:
        if self.open >= self.max_connections:
            self._refuse("max_connections", f"{self.open} open ([web] max_connections)")
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1

    def too_slow(self) -> None:
        self._refuse(
            "header_timeout",
            f"no complete request headers in {self.header_timeout:g} s ([web] header_timeout)",
        )

    def _refuse(self, reason: str, why: str) -> None:
        self.refused[reason] += 1
        suppressed = self._warnings.due(reason)
        if suppressed is not None:
            log.warning(
                "web: connection closed: %s%s",
                why,
                since_last(suppressed),
            )


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard's two rules."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._guard.admit():
            transport.abort()
            return
        self._admitted = True
        self._transport = transport
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.header_timeout, self._expire
        )
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._deadline is not None:
            if END_OF_HEADERS in self._tail + data:
                self._deadline.cancel()
                self._deadline = None
            else:
                self._tail = (self._tail + data)[-(len(END_OF_HEADERS) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._guard.release()
        self._inner.connection_lost(exc)

    def _expire(self) -> None:
        self._deadline = None
        self._guard.too_slow()
        if self._transport is not None:
            self._transport.abort()


def guarded(factory: Callable[[], Any], guard: ConnectionGuard) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for `loop.create_server` that wraps aiohttp's."""
    return lambda: GuardedConnection(factory(), guard)
