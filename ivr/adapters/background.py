"""Work that must finish but must not keep a caller waiting.

Storing a survey's last answers and its final status can take a few
milliseconds, more when many surveys end at once; the caller's channel should
go back to the dialplan right after the thanks prompt instead. Such writes run
here, and shutdown waits for them before the database is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None], *, what: str) -> None:
        """Run `work`; its own code logs failures with the call's Linkedid."""
        task = asyncio.create_task(work, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work %r failed: %s", task.get_name(), task.exception())

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` for pending work; return how much was still running."""
        if not self._tasks:
            return 0
        _, still_running = await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(still_running)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel endless tasks (readers, schedules) and wait until each has stopped."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
