"""The scheduled purge of caller data older than `[privacy] retention_days`.

Runs once at start-up, then every `purge_interval_hours`. A failed run is
logged and tried again at the next interval: the data is still there, and
the service has callers to serve.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

PurgeRun = Callable[[datetime], Awaitable[list[tuple[str, int]]]]
"""Clears what is older than the cut-off; (what, rows changed) per step."""


async def purge_periodically(
    run: PurgeRun,
    *,
    retention_days: int,
    interval_hours: float,
    clock: Callable[[], datetime],
) -> None:
    while True:
        before = clock() - timedelta(days=retention_days)
        try:
            for what, count in await run(before):
                log.info("retention purge: %s of %d older calls cleared", what, count)
        except Exception:
            log.exception("retention purge failed; next attempt in %s hours", f"{interval_hours:g}")
        await asyncio.sleep(interval_hours * 3600)
