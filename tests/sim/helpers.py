"""Small raw clients for driving the simulated PBX over TCP in tests.

Deliberately not panoramisk and not the service: the point is to see the
bytes the simulator puts on the wire, exactly as a client would receive them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ivr.sim import SimulatedPbx
from ivr.sim.templates import is_call_event, is_survey_event
from ivr.sim.transcript import AmiMessage, ami_events, read_agi

Message = list[tuple[str, str]]
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_FINAL_REPLY = re.compile(r"^\d{3} ")


def value(message: Message, name: str, default: str = "") -> str:
    return next((v for k, v in message if k == name), default)


def names(message: Message) -> list[str]:
    return [k for k, _ in message]


class AmiClient:
    """A manager client that keeps every byte it receives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.raw = bytearray()
        self.reads: list[bytes] = []
        self._buffer = b""
        self.banner = b""
        self.log: list[Message] = []
        """Every message received, whichever call consumed it."""

    @classmethod
    async def connect(cls, port: int) -> AmiClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _fill(self, timeout: float) -> bool:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            return False
        self.raw += data
        self.reads.append(data)
        self._buffer += data
        return True

    async def read_banner(self, timeout: float = 2.0) -> bytes:
        while b"\r\n" not in self._buffer:
            if not await self._fill(timeout):
                break
        self.banner, _, self._buffer = self._buffer.partition(b"\r\n")
        self.banner += b"\r\n"
        return self.banner

    async def send(self, *headers: tuple[str, str]) -> None:
        self.writer.write("".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n")
        await self.writer.drain()

    async def message(self, timeout: float = 2.0) -> Message:
        while b"\r\n\r\n" not in self._buffer:
            if not await self._fill(timeout):
                raise EOFError("AMI connection closed")
        block, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        message = [_split(line) for line in block.decode().split("\r\n")]
        self.log.append(message)
        return message

    async def login(
        self,
        username: str = "ivr",
        secret: str = "secret",  # noqa: S107 - the simulator's default test account
        events: str = "on",
    ) -> Message:
        await self.read_banner()
        await self.send(
            ("Action", "Login"),
            ("ActionID", "login-1"),
            ("Events", events),
            ("Secret", secret),
            ("Username", username),
        )
        return await self.message()

    async def until(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.message(timeout)
                if predicate(message):
                    return message

    async def action(self, *headers: tuple[str, str]) -> list[Message]:
        """Send an action and collect its response, plus its list events if it starts a list."""
        action_id = value(list(headers), "ActionID")
        await self.send(*headers)
        response = await self.until(
            lambda m: value(m, "ActionID") == action_id and m[0][0] == "Response"
        )
        collected = [response]
        if value(response, "EventList") == "start":
            while True:
                event = await self.until(lambda m: value(m, "ActionID") == action_id)
                collected.append(event)
                if value(event, "EventList") == "Complete":
                    break
        return collected

    async def drain(self, timeout: float = 10.0) -> list[Message]:
        """Logoff, then every message until the simulator closes the connection."""
        await self.send(("Action", "Logoff"), ("ActionID", "logoff"))
        return await self.rest(timeout)

    async def rest(self, timeout: float = 10.0) -> list[Message]:
        """Every message until the connection closes."""
        messages: list[Message] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    messages.append(await self.message(timeout))
                except EOFError:
                    return messages

    def close(self) -> None:
        self.writer.close()


def _split(line: str) -> tuple[str, str]:
    name, _, rest = line.partition(": ")
    return (name, rest)


def events(messages: Iterable[Message]) -> list[Message]:
    return [m for m in messages if m and m[0][0] == "Event"]


@dataclass
class AgiConnection:
    """One FastAGI connection from the simulator, as the service side sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    env_lines: list[bytes] = field(default_factory=list)
    received: list[str] = field(default_factory=list)

    @property
    def env(self) -> list[tuple[str, str]]:
        return [_split(line.decode().rstrip("\n")) for line in self.env_lines]

    async def read_env(self) -> None:
        while True:
            line = await self.reader.readline()
            if line in (b"\n", b""):
                return
            self.env_lines.append(line)

    async def line(self, timeout: float = 5.0) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise EOFError("FastAGI connection closed")
        text = raw.decode()
        assert text.endswith("\n")
        assert not text.endswith("\r\n")
        self.received.append(text[:-1])
        return text[:-1]

    async def command(self, text: str, timeout: float = 5.0) -> list[str]:
        """Send a command; every line up to its final reply (HANGUP and 520- lines included)."""
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()
        lines: list[str] = []
        while True:
            line = await self.line(timeout)
            lines.append(line)
            if _FINAL_REPLY.match(line):
                return lines

    def close(self) -> None:
        self.writer.close()


Script = Callable[[AgiConnection], Awaitable[None]]


class AgiServer:
    """A FastAGI server that runs `script` on each connection and keeps them for inspection."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self.connections: list[AgiConnection] = []
        self.done: asyncio.Queue[AgiConnection] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = AgiConnection(reader, writer)
        self.connections.append(connection)
        try:
            await connection.read_env()
            await self._script(connection)
        finally:
            connection.close()
            self.done.put_nowait(connection)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def close_at_once(connection: AgiConnection) -> None:
    """A survey service that declines every call."""


def captured_replies(name: str) -> list[str]:
    """What Asterisk sent after the env block in a FastAGI capture (`<<` lines)."""
    return [line.text for line in read_agi(name).lines if not line.sent]


def captured_commands(name: str) -> list[str]:
    return [line.text for line in read_agi(name).lines if line.sent]


def call_event_names(
    sequence: Sequence[tuple[str, dict[str, str]]],
) -> list[str]:
    """The call's event names with the survey's own events taken out of the AGI window.

    Applied the same way to a capture and to the simulator's output, so the
    two can be compared name for name (the survey events differ by design:
    the simulator makes them live from the FastAGI conversation).
    """
    result: list[str] = []
    agi_channel: str | None = None
    for name, headers in sequence:
        if not is_call_event(name):
            continue
        if agi_channel is not None:
            if name == "VarSet" and headers.get("Variable") == "AGISTATUS":
                agi_channel = None
            elif is_survey_event(name, headers, agi_channel):
                continue
        if name == "Newexten" and headers.get("Application") == "AGI":
            agi_channel = headers.get("Channel")
        result.append(name)
    return result


def capture_sequence(name: str) -> list[tuple[str, dict[str, str]]]:
    return [(e.event, dict(e.headers)) for e in ami_events(name, connection=1)]


def message_sequence(messages: Iterable[Message]) -> list[tuple[str, dict[str, str]]]:
    return [(m[0][1], dict(m)) for m in events(messages)]


def first_event(messages: Iterable[AmiMessage], name: str) -> AmiMessage:
    return next(m for m in messages if m.event == name)


# What the fixtures of tests/sim/conftest.py hand a test.
PbxFactory = Callable[..., Awaitable[SimulatedPbx]]


class AgiFactory(Protocol):
    def __call__(self, script: Script = ...) -> Awaitable[tuple[AgiServer, int]]: ...
