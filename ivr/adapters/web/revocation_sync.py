"""Keeps this node's signed-out sessions in step with the database.

A logout is honoured here at once and stored for the other nodes and the next
start; each node reads what was stored since it last looked every
`POLL_SECONDS`, so `ivr-survey web sessions revoke` takes effect everywhere
within that. When the database cannot take a logout it is kept here and
stored at a later poll; when it cannot be read at start, cookies signed
before the start are refused until it can (`Authenticator.revocations_known`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from ivr.adapters.guard import RateLimitedWarnings, since_last
from ivr.adapters.web.auth import Authenticator
from ivr.ports import Revocation, RevocationStore

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
PURGE_SECONDS = 3600.0
# Logouts waiting for the database; past this, the oldest are stored no more
# (they still hold on this node until they expire).
MAX_PENDING = 10_000


class RevocationSync:
    def __init__(
        self,
        authenticator: Authenticator,
        store: RevocationStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._authenticator = authenticator
        self._store = store
        self._clock = clock
        self._last_seen = 0
        self._pending: deque[Revocation] = deque(maxlen=MAX_PENDING)
        self._warnings = RateLimitedWarnings(clock=time.monotonic)
        authenticator.revocations_known(known=False)

    async def signed_out(self, revocation: Revocation, user: str) -> None:
        """Store a logout already honoured here; said, not raised, when it cannot be."""
        try:
            await self._store.record(revocation)
        except Exception as error:
            self._pending.append(revocation)
            log.error(
                "dashboard: %r signed out, but the sign-out could not be stored (%s): it "
                "holds on this node now and is stored when the database takes it",
                user,
                error,
            )

    async def catch_up(self) -> bool:
        """Store the logouts still waiting, then apply what every node stored; False
        (and a rate-limited warning) when the database did not answer."""
        try:
            while self._pending:
                await self._store.record(self._pending[0])
                self._pending.popleft()
            while found := await self._store.newer_than(self._last_seen, self._now()):
                for number, revocation in found:
                    self._authenticator.apply(revocation)
                    self._last_seen = number
        except Exception as error:
            if (suppressed := self._warnings.due("read")) is not None:
                log.warning(
                    "dashboard: cannot read or store the signed-out sessions (%s)%s; a session "
                    "signed out on another node may still work here until it can",
                    error,
                    since_last(suppressed),
                )
            return False
        self._authenticator.revocations_known(known=True)
        return True

    async def forget_expired(self) -> None:
        try:
            await self._store.forget_expired(self._now())
        except Exception as error:
            log.warning("dashboard: cannot forget expired sign-outs (%s); will try later", error)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def run_forever(self) -> None:
        since_purge = 0.0
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await self.catch_up()
            since_purge += POLL_SECONDS
            if since_purge >= PURGE_SECONDS:
                since_purge = 0.0
                await self.forget_expired()
