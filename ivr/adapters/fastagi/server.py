"""FastAGI server: accepts Asterisk's AGI connections and runs a route per request.

This replaces panoramisk's `fast_agi.Application`, whose traps are proven in
tests/test_panoramisk_traps.py: it spins at 100% CPU on a connection closed
before the end of the header, takes an asynchronous `HANGUP` line as the reply
to the next command (every later reply shifts by one), does the same with
multi-line `520-` usage errors, and swallows cancellation. Here:

- the header must arrive whole within `header_timeout`, in at most
  `max_header_lines` lines of at most `line_limit` bytes, or the connection is
  closed and logged (rate-limited), without touching any other session;
- connections still waiting for their header have a cap of their own
  (`max_unidentified`) and do not count against `max_sessions`: Asterisk
  sends its whole header at once, so when the cap is reached the one that has
  waited longest is closed to admit the newcomer, and idle connections, however
  many and however fast they reconnect, never keep a real request out;
- `HANGUP` lines are out-of-band notices (fact 22) recorded on the channel,
  never replies; `100 Trying` lines are skipped; `520-` blocks are read whole;
- the listen backlog is large (a queue emptying at shift end opens many
  sessions at once; the default 100 costs SYN retries);
- connections from outside the allowed networks, or beyond `max_sessions`,
  are closed before a byte is read (`ivr.adapters.guard`), with a rate-limited warning;
- `stop()` closes the listener first, so Asterisk's connect fails at once and
  the dialplan falls through on AGISTATUS=FAILURE, while sessions in progress
  get their grace period (cut short by `hurry()`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import sys
import termios
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import SupportsIndex

from ivr.adapters.fastagi.protocol import (
    HANGUP_LINE,
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    is_continuation,
    parse_environment_line,
    parse_reply,
)
from ivr.adapters.guard import RateLimitedWarnings, SessionGuard, since_last

log = logging.getLogger(__name__)

DEFAULT_BACKLOG = 4096
# Asterisk writes its whole header as soon as it connects (docs/asterisk-facts.md, fact 60).
DEFAULT_HEADER_TIMEOUT = 1.0
DEFAULT_MAX_UNIDENTIFIED = 100
# A connection silent this long is not Asterisk (which sends its header within
# a millisecond); younger ones are never closed to make room, up to this many
# times `max_unidentified`.
YOUNG_SECONDS = 0.5
UNIDENTIFIED_BURST = 4
# Asterisk's longest usage text (520-) is a few dozen lines.
MAX_CONTINUED_LINES = 256
DEFAULT_LINE_LIMIT = 8192


class AgiConnectionClosed(Exception):
    """Asterisk closed the FastAGI socket (or it broke) while we expected a reply."""


class AgiNoRequest(AgiConnectionClosed):
    """A connection closed before sending anything: a health check or a port probe."""


class AgiCommandTimeout(Exception):
    """Asterisk did not answer a command in time: the session is treated as dead."""


class AgiChannel:
    """One FastAGI session after its header: send a command, get its reply."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: AgiRequest,
        *,
        command_timeout: float,
        line_limit: int = DEFAULT_LINE_LIMIT,
    ) -> None:
        self.request = request
        self._line_limit = line_limit
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        self.hangup_notified = False

    @property
    def peer(self) -> str:
        return _peer_name(self._writer)

    @property
    def peer_address(self) -> str | None:
        """The address the connection comes from (which PBX sent it), None if unknown."""
        peer = self._writer.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            return str(peer[0])
        return None

    async def command(self, text: str, *, expected_seconds: float = 0.0) -> AgiReply:
        """Send one command and return its final reply.

        `expected_seconds` is how long the command may legitimately take (a
        digit wait, a prompt); the session is declared dead only after that
        plus `command_timeout`.
        """
        if "\n" in text or "\r" in text:
            raise ValueError("an AGI command is a single line")
        try:
            self._writer.write(text.encode("utf-8") + b"\n")
            await self._writer.drain()
        except (ConnectionError, OSError) as error:
            raise AgiConnectionClosed(str(error)) from error
        deadline = expected_seconds + self._command_timeout
        try:
            return await asyncio.wait_for(self._read_reply(), deadline)
        except TimeoutError as error:
            raise AgiCommandTimeout(
                f"no reply to {text.split(' ', 1)[0]!r} in {deadline:.1f}s"
            ) from error

    async def _read_reply(self) -> AgiReply:
        while True:
            line = await self._read_line()
            if line == HANGUP_LINE:
                self.hangup_notified = True
                continue
            if line.startswith("100 "):
                continue
            if is_continuation(line):
                return await self._read_continued(line)
            return parse_reply(line)

    async def _read_continued(self, first: str) -> AgiReply:
        code = first[:3]
        lines = [first[4:]]
        while len(lines) < MAX_CONTINUED_LINES:
            line = await self._read_line()
            if line.startswith(code + " "):
                lines.append(line[4:])
                return AgiReply(code=int(code), text="\n".join(lines))
            lines.append(line)
        raise AgiProtocolError(f"a {code}- reply ran past {MAX_CONTINUED_LINES} lines")

    async def _read_line(self) -> str:
        try:
            raw = await self._reader.readline()
        except (ConnectionError, OSError) as error:
            raise AgiConnectionClosed(str(error)) from error
        except ValueError as error:
            raise AgiProtocolError(
                f"reply line longer than {self._line_limit} bytes; refused"
            ) from error
        if not raw.endswith(b"\n"):
            raise AgiConnectionClosed("Asterisk closed the FastAGI connection")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")


Route = Callable[[AgiChannel], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Drained:
    """What became of the sessions open when the server stopped."""

    finished: int = 0
    cut_off: int = 0


class FastAgiServer:
    def __init__(
        self,
        route: Route,
        *,
        host: str,
        port: int,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        command_timeout: float = 30.0,
        max_unidentified: int = DEFAULT_MAX_UNIDENTIFIED,
        max_header_lines: int = 256,
        line_limit: int = DEFAULT_LINE_LIMIT,
        backlog: int = DEFAULT_BACKLOG,
        guard: SessionGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._route = route
        self._guard = guard or SessionGuard()
        self._clock = clock
        self._refusal_warnings = RateLimitedWarnings(clock)
        self._hurry = asyncio.Event()
        self._host = host
        self._port = port
        self._header_timeout = header_timeout
        self._max_unidentified = max_unidentified
        # Connections still reading their header, oldest first.
        self._unidentified: dict[asyncio.Task[None], _Waiting] = {}
        self._evicted: set[asyncio.Task[None]] = set()
        self.refused: collections.Counter[str] = collections.Counter()
        self._command_timeout = command_timeout
        self._max_header_lines = max_header_lines
        self._line_limit = line_limit
        self._backlog = backlog
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        # Sessions past their header (surveys, not probes), counted by stop().
        self._routed: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            reader = _HeardReader(limit=self._line_limit, loop=loop)
            return asyncio.StreamReaderProtocol(reader, self._on_connection, loop=loop)

        self._server = await loop.create_server(
            protocol, self._host, self._port, backlog=self._backlog
        )
        log.info("FastAGI listening on %s:%d", self._host, self.port)

    def stop_listening(self) -> None:
        """Close the listening socket now: new connections are refused by the kernel."""
        if self._server is not None:
            self._server.close()

    def hurry(self) -> None:
        """Cut the grace period of a `stop()` in progress (or to come) short."""
        self._hurry.set()

    async def stop(self, grace: float = 5.0) -> Drained:
        """Stop accepting, give open sessions `grace` seconds, then cancel them."""
        self.stop_listening()
        open_sessions = set(self._sessions)
        routed = self._routed
        pending: set[asyncio.Task[None]] = set()
        if open_sessions:
            all_finished = asyncio.create_task(asyncio.wait(open_sessions))
            hurried = asyncio.create_task(self._hurry.wait())
            await asyncio.wait(
                {all_finished, hurried}, timeout=grace, return_when=asyncio.FIRST_COMPLETED
            )
            all_finished.cancel()
            hurried.cancel()
            pending = {task for task in open_sessions if not task.done()}
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        cut_off = len(routed & pending)
        return Drained(finished=len(routed) - cut_off, cut_off=cut_off)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        identified = len(self._sessions) - len(self._unidentified)
        refusal = self._guard.refusal(_peer_address(writer), identified)
        if refusal is not None:
            self._refuse(writer, refusal)
            return
        if len(self._unidentified) >= self._max_unidentified:
            self._evict_one_unidentified()
        self._sessions.add(task)
        self._unidentified[task] = _Waiting(reader, writer, self._clock())
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            if task not in self._evicted:
                raise
            task.uncancel()
        finally:
            self._sessions.discard(task)
            self._unidentified.pop(task, None)
            self._evicted.discard(task)
            if self._server is not None and self._server.is_serving():
                self._routed.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        try:
            request = await asyncio.wait_for(self._read_request(reader), self._header_timeout)
        except TimeoutError:
            self.refused["no_header"] += 1
            suppressed = self._refusal_warnings.due("no_header")
            if suppressed is not None:
                log.warning(
                    "FastAGI from %s: no complete agi_* header in %.1fs; closed%s",
                    peer,
                    self._header_timeout,
                    since_last(suppressed),
                )
            return
        except AgiNoRequest:
            log.info("FastAGI from %s: closed without a request (health check or probe)", peer)
            return
        except (AgiProtocolError, AgiConnectionClosed) as error:
            log.warning("FastAGI from %s: %s; closed", peer, error)
            return
        task = asyncio.current_task()
        assert task is not None
        self._unidentified.pop(task, None)
        self._routed.add(task)
        channel = AgiChannel(
            reader,
            writer,
            request,
            command_timeout=self._command_timeout,
            line_limit=self._line_limit,
        )
        try:
            await self._route(channel)
        except AgiConnectionClosed:
            log.info("FastAGI %s (%s): Asterisk closed the connection", request.channel, peer)
        except (AgiCommandTimeout, AgiProtocolError) as error:
            log.warning("FastAGI %s (%s): %s; session closed", request.channel, peer, error)
        except Exception:
            log.exception(
                "FastAGI %s (%s): the route failed; session closed", request.channel, peer
            )

    async def _read_request(self, reader: asyncio.StreamReader) -> AgiRequest:
        environment: list[tuple[str, str]] = []
        while True:
            try:
                raw = await reader.readline()
            except ValueError as error:
                raise AgiProtocolError(
                    f"header line longer than {self._line_limit} bytes; refused"
                ) from error
            if not raw and not environment:
                raise AgiNoRequest
            if not raw.endswith(b"\n"):
                raise AgiConnectionClosed(
                    f"connection closed after {len(environment)} header lines, "
                    "before the header ended"
                )
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line == "":
                if not environment:
                    raise AgiProtocolError("empty agi_* header")
                return AgiRequest(tuple(environment))
            if len(environment) >= self._max_header_lines:
                raise AgiProtocolError(f"more than {self._max_header_lines} header lines")
            environment.append(parse_environment_line(line))

    def _evict_one_unidentified(self) -> None:
        """Close the longest-waiting connection that has sent nothing for
        `YOUNG_SECONDS`. A younger one is how Asterisk looks between connecting
        and its header arriving (a queue emptying at shift end connects
        hundreds at once): it is left alone, up to `UNIDENTIFIED_BURST` times
        the cap; past that the longest-waiting silent one goes. One that has
        sent bytes goes last of all: its header is being read."""
        now = self._clock()
        chosen = next(
            (
                task
                for task, waiting in self._unidentified.items()
                if now - waiting.since >= YOUNG_SECONDS and waiting.silent()
            ),
            None,
        )
        if chosen is None:
            if len(self._unidentified) < UNIDENTIFIED_BURST * self._max_unidentified:
                return  # a burst of new connections: too young to judge
            chosen = next(
                (task for task, waiting in self._unidentified.items() if waiting.silent()),
                next(iter(self._unidentified)),
            )
        del self._unidentified[chosen]
        self._evicted.add(chosen)
        chosen.cancel()
        self.refused["evicted"] += 1
        suppressed = self._refusal_warnings.due("evicted")
        if suppressed is not None:
            log.warning(
                "FastAGI: %d connections are waiting for their header ([agi] max_unidentified): "
                "the oldest was closed to admit a new one%s",
                self._max_unidentified,
                since_last(suppressed),
            )

    def _refuse(self, writer: asyncio.StreamWriter, reason: str) -> None:
        address = _peer_address(writer)
        writer.transport.abort()
        key = address if reason.startswith("address") else "max_sessions"
        self.refused["address" if key == address else "max_sessions"] += 1
        suppressed = self._refusal_warnings.due(key)
        if suppressed is not None:
            log.warning(
                "FastAGI from %s: refused: %s%s",
                address,
                reason,
                f" ({suppressed} more refused since the last warning)" if suppressed else "",
            )


class _HeardReader(asyncio.StreamReader):
    """A StreamReader that remembers whether any byte ever arrived."""

    heard = False

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        if data:
            self.heard = True
        super().feed_data(data)


@dataclass(frozen=True, slots=True)
class _Waiting:
    """A connection still waiting for its header."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    since: float

    def silent(self) -> bool:
        """Nothing received, neither read by the stream nor waiting in the kernel."""
        if getattr(self.reader, "heard", False):
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return True
        try:
            waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return True
        return int.from_bytes(waiting, sys.byteorder) == 0


def _peer_address(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
