"""AMI framing and Asterisk's permission arithmetic, as the simulator needs them.

Kept apart from the server so the rules that decide who receives what (the
`Privilege` header against a session's read classes and `Events:` mask) can
be read and tested without sockets. The class names and bits are those of
manager.c's `perms[]` table; "all" is every bit, which is why an event's
`Privilege: call,all` means the single class `call`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

Headers = Sequence[tuple[str, str]]

CLASS_BITS: Mapping[str, int] = MappingProxyType(
    {
        "system": 1 << 0,
        "call": 1 << 1,
        "log": 1 << 2,
        "verbose": 1 << 3,
        "command": 1 << 4,
        "agent": 1 << 5,
        "user": 1 << 6,
        "config": 1 << 7,
        "dtmf": 1 << 8,
        "reporting": 1 << 9,
        "cdr": 1 << 10,
        "dialplan": 1 << 11,
        "originate": 1 << 12,
        "agi": 1 << 13,
        "cc": 1 << 14,
        "aoc": 1 << 15,
        "test": 1 << 16,
        "security": 1 << 17,
        "message": 1 << 18,
    }
)
ALL_BITS = (1 << 19) - 1
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """One AMI message: CRLF after every line and an empty line at the end."""
    return ("".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode()


def classes_mask(classes: Iterable[str]) -> int:
    """A manager.conf `read =`/`write =` list as a bit mask (`all` sets every bit)."""
    mask = 0
    for raw in classes:
        name = raw.strip().lower()
        if name == "all":
            mask |= ALL_BITS
        else:
            mask |= CLASS_BITS.get(name, 0)
    return mask


@functools.cache
def privilege_mask(privilege: str) -> int:
    """The classes an event belongs to, from its `Privilege` header (a handful of
    distinct strings, read for every event a PBX emits)."""
    return classes_mask(part for part in privilege.split(",") if part.strip().lower() != "all")


def events_mask(value: str) -> int | None:
    """manager.c `strings_to_mask` for `Events:`/`EventMask:`; None leaves the mask as it is."""
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    lowered = text.lower()
    if lowered in _FALSE:
        return 0
    if lowered in _TRUE:
        return ALL_BITS
    return classes_mask(text.split(","))


def delivers(read: int, send_events: int, category: int) -> bool:
    """manager.c: an event goes out only if every one of its classes is readable and wanted."""
    return (read & category) == category and (send_events & category) == category


class ActionParser:
    """Splits a client's byte stream into actions; tolerant of bare LF like Asterisk."""

    def __init__(self) -> None:
        self._buffer = b""
        self._pending: list[tuple[str, str]] = []

    def feed(self, data: bytes) -> list[list[tuple[str, str]]]:
        self._buffer += data
        actions: list[list[tuple[str, str]]] = []
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                if self._pending:
                    actions.append(self._pending)
                    self._pending = []
                continue
            name, _, value = line.partition(":")
            self._pending.append((name.strip(), value.lstrip(" ")))
        return actions


def header(headers: Headers, name: str, default: str = "") -> str:
    """astman_get_header: the first header of that name, case-insensitively."""
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return default
