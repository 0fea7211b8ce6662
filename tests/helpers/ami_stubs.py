"""Stand-ins for what panoramisk hands our AMI protocol: its factory and a transport.

They record what the protocol dispatches and writes, so framing can be tested
byte by byte without a socket.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Factory:
    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], dict[str, tuple[str, ...]]]] = []
        self.messages: list[Any] = []
        self.forgetable_actions = ("ping", "login")
        self.awaiting_actions: list[Any] = []
        self.lost: list[object] = []

    def dispatch(self, message: Any) -> None:
        self.messages.append(message)

    def dispatch_headers(
        self, headers: dict[str, str], repeated: dict[str, tuple[str, ...]]
    ) -> None:
        self.events.append((headers, repeated))

    def connection_lost(self, exc: object) -> None:
        self.lost.append(exc)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.written = b""

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True
