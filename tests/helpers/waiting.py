"""Waiting for what a running service does in its own time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False
