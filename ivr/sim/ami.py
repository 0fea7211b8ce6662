"""The AMI half of the simulated Asterisk: sessions, actions, and who receives which event.

Framing, responses and list events follow the lab captures byte for byte
(banner, CRLF, header order, `ActionID` placement). Where the captures are
silent the behaviour is taken from manager.c as remembered and marked
"guess": the unknown-action and not-logged-in replies, the `Events` action's
reply, the permission classes needed by CoreShowChannels and Status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from ivr.sim import resync
from ivr.sim.clock import event_tv
from ivr.sim.state import PbxState
from ivr.sim.wire import (
    ALL_BITS,
    CLASS_BITS,
    ActionParser,
    Headers,
    classes_mask,
    delivers,
    encode,
    events_mask,
    header,
)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ALL = frozenset({"all"})
CHUNK_PAUSE = 0.002
# manager.c registers these two with write classes; the others need none (fact 43).
WRITE_CLASSES = MappingProxyType(
    {
        "coreshowchannels": CLASS_BITS["system"] | CLASS_BITS["reporting"],
        "status": CLASS_BITS["system"] | CLASS_BITS["call"] | CLASS_BITS["reporting"],
    }
)


@dataclass(frozen=True)
class AmiAccount:
    """A manager.conf user; `excluded_events` emulates `eventfilter(action(exclude),name(X))`."""

    username: str
    secret: str
    read: frozenset[str] = ALL
    write: frozenset[str] = ALL
    excluded_events: frozenset[str] = frozenset()


# The exclude filters of the lab's least-privilege listener
# (transcripts/configs/manager-least-privilege.conf), which produced the
# 22-event capture of fact 44.
LAB_LISTENER_EXCLUDES = frozenset(
    {
        "VarSet",
        "Newexten",
        "CEL",
        "Cdr",
        "AGIExecStart",
        "AGIExecEnd",
        "DeviceStateChange",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "Newstate",
        "NewCallerid",
        "NewConnectedLine",
        "NewAccountCode",
        "LocalBridge",
        "DialState",
        "SoftHangupRequest",
        "HangupRequest",
        "BridgeCreate",
        "BridgeDestroy",
        "QueueMemberStatus",
        "OriginateResponse",
        "Hold",
        "Unhold",
    }
)


def lab_listener(username: str, secret: str) -> AmiAccount:
    """The lab's least-privilege listener: read agent,call,system,user, no write, 23 filters."""
    return AmiAccount(
        username,
        secret,
        read=frozenset({"agent", "call", "system", "user"}),
        write=frozenset(),
        excluded_events=LAB_LISTENER_EXCLUDES,
    )


class AmiHost(Protocol):
    """What the AMI server needs from its PBX."""

    state: PbxState

    def account(self, username: str) -> AmiAccount | None: ...

    def uptime(self) -> int: ...

    def epoch(self) -> float: ...

    def shutting_down(self) -> bool: ...

    def record_action(self, action: dict[str, str]) -> None: ...

    def record_login(self, username: str, accepted: bool) -> None: ...

    def publish_event(self, headers: Sequence[tuple[str, str]]) -> None: ...


class AmiSession:
    """One TCP client of the manager interface."""

    def __init__(
        self,
        server: AmiServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.account: AmiAccount | None = None
        self.read = 0
        self.write = 0
        self.send_events = ALL_BITS
        self.session_id = f"0x{id(self):012x}"
        self.session_tv = ""
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        local = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{local[0]}/{local[1]}"

    @property
    def authenticated(self) -> bool:
        return self.account is not None

    def receives(self, name: str, category: int) -> bool:
        """Whether Asterisk would send this session the event (read classes, mask, filters)."""
        if self.account is None or self._server.frozen:
            return False
        if name in self.account.excluded_events:
            return False
        return delivers(self.read, self.send_events, category)

    def deliver(self, data: bytes) -> None:
        self._out.put_nowait(data)

    def send(self, headers: Headers) -> None:
        self._out.put_nowait(encode(headers))

    def close_after_flush(self) -> None:
        self._out.put_nowait(None)

    def abort(self) -> None:
        self._writer.transport.abort()

    async def run(self) -> None:
        writing = asyncio.create_task(self._write_loop())
        try:
            await self._server.thawed()
            self._out.put_nowait(BANNER)
            parser = ActionParser()
            while not self._writer.is_closing():
                data = await self._reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    await self._server.thawed()
                    if not await self._server.handle(self, action):
                        return
        except (ConnectionError, OSError):
            pass
        finally:
            self.close_after_flush()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError):
                await asyncio.wait_for(writing, 1.0)
            writing.cancel()
            self._writer.close()

    async def _write_loop(self) -> None:
        """Write what is queued; in one write when several events wait, as a
        busy Asterisk's events reach the client in one read anyway (TCP keeps
        no message boundaries), without a system call per event."""
        chunk = self._server.chunk_size
        try:
            while True:
                pending = [await self._out.get()]
                while pending[-1] is not None and not self._out.empty():
                    pending.append(self._out.get_nowait())
                closing = pending[-1] is None
                waiting = [data for data in pending if data is not None]
                if waiting and not self._server.frozen:
                    if chunk:
                        for data in waiting:
                            await self._write_chunks(data, chunk)
                    else:
                        self._writer.write(b"".join(waiting))
                        await self._writer.drain()
                if closing:
                    await self._writer.drain()
                    self._writer.close()
                    return
        except (ConnectionError, OSError):
            self._writer.close()

    async def _write_chunks(self, data: bytes, size: int) -> None:
        """Write `size`-byte pieces, pausing where a piece ends inside a UTF-8 character.

        The pause is what makes a piece arrive in a read of its own. Pausing
        2 ms after every piece would do that too, but a call's read-all stream
        is ~100 KB, half a minute at 7 bytes a piece. So: the first cut
        character of each message waits 2 ms (enough for a reader in another
        process), the others yield to the event loop once (enough for a
        reader in this process), and cuts between characters do not wait.
        """
        paused = False
        for start in range(0, len(data), size):
            self._writer.write(data[start : start + size])
            following = data[start + size : start + size + 1]
            if following and 0x80 <= following[0] <= 0xBF:
                await self._writer.drain()
                await asyncio.sleep(0 if paused else CHUNK_PAUSE)
                paused = True
        await self._writer.drain()


Handler = Callable[[AmiSession, Sequence[tuple[str, str]], str | None], Awaitable[bool]]


class AmiServer:
    """The listening socket, its sessions, and the actions they may send."""

    def __init__(
        self, host: AmiHost, *, chunk_size: int | None, login_failure_delay: float
    ) -> None:
        self._host = host
        self.chunk_size = chunk_size
        self._login_failure_delay = login_failure_delay
        self._server: asyncio.Server | None = None
        self.sessions: set[AmiSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._handlers: dict[str, Handler] = {
            "login": self._login,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
            "queuestatus": self._queue_status,
            "queuesummary": self._queue_summary,
            "coreshowchannels": self._core_show_channels,
            "status": self._status,
            "bridgelist": self._bridge_list,
            "bridgeinfo": self._bridge_info,
        }

    @property
    def frozen(self) -> bool:
        return not self._thawed.is_set()

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    async def thawed(self) -> None:
        await self._thawed.wait()

    async def listen(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, host, port, backlog=4096)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AmiSession(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.create_task(session.run())
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self.sessions.discard(session)

        task.add_done_callback(done)

    def broadcast(self, name: str, category: int, headers: Headers) -> None:
        """Send an event to every session that receives it, encoded once and
        only if one does: a least-privilege listener filters out most of a call."""
        data: bytes | None = None
        for session in tuple(self.sessions):
            if session.receives(name, category):
                if data is None:
                    data = encode(headers)
                session.deliver(data)

    async def close_sessions(self, graceful: bool) -> None:
        """Graceful: flush what is queued, then close (Shutdown). Otherwise cut the TCP."""
        for session in tuple(self.sessions):
            if graceful:
                session.close_after_flush()
            else:
                session.abort()
        if self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=2.0)

    async def cancel_all(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        for session in tuple(self.sessions):
            session.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def handle(self, session: AmiSession, action: Sequence[tuple[str, str]]) -> bool:
        """Answer one action; False when the session must close.

        Order of checks as in manager.c's process_message (remembered, not
        captured - a guess): shutting down refuses everything (fact 48); before
        Login only Login/Logoff; unknown names get `Invalid/unknown command`;
        then the write classes (fact 43).
        """
        self._host.record_action(dict(action))
        name = header(action, "Action")
        action_id = next((v for k, v in action if k.lower() == "actionid"), None)
        if not name:
            session.send(_error(action_id, "Missing action in request"))
            return True
        if self._host.shutting_down():
            session.send(_error(action_id, "Asterisk is shutting down"))
            return True
        key = name.lower()
        if not session.authenticated and key not in ("login", "logoff"):
            session.send(_error(action_id, "Permission denied"))
            return True
        handler = self._handlers.get(key)
        if handler is None:
            session.send(_error(action_id, "Invalid/unknown command"))
            return True
        required = WRITE_CLASSES.get(key, 0)
        if required and not session.write & required:
            session.send(_error(action_id, "Permission denied"))
            self._request_not_allowed(session, name)
            return True
        return await handler(session, action, action_id)

    def _security(self, session: AmiSession, name: str, severity: str) -> list[tuple[str, str]]:
        assert session.account is not None
        return [
            ("Event", name),
            ("Privilege", "security,all"),
            ("EventTV", event_tv(self._host.epoch())),
            ("Severity", severity),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("AccountID", session.account.username),
            ("SessionID", session.session_id),
            ("LocalAddress", session.local),
            ("RemoteAddress", session.remote),
        ]

    def _request_not_allowed(self, session: AmiSession, action: str) -> None:
        headers = self._security(session, "RequestNotAllowed", "Error")
        headers += [("RequestType", f"Action: {action}"), ("SessionTV", session.session_tv)]
        self._host.publish_event(headers)

    async def _login(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        if session.authenticated:
            session.send(_ack(action_id, "Already authenticated"))
            return True
        username = header(action, "Username")
        account = self._host.account(username)
        if account is None or account.secret != header(action, "Secret"):
            self._host.record_login(username, False)
            await asyncio.sleep(self._login_failure_delay)
            session.send(_error(action_id, "Authentication failed"))
            return False
        session.account = account
        session.read = classes_mask(account.read)
        session.write = classes_mask(account.write)
        mask = events_mask(header(action, "Events"))
        session.send_events = ALL_BITS if mask is None else mask
        session.session_tv = event_tv(self._host.epoch())
        session.send(_ack(action_id, "Authentication accepted"))
        if session.read & CLASS_BITS["system"]:
            uptime = str(self._host.uptime())
            session.send(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", uptime),
                    ("LastReload", uptime),
                    ("Status", "Fully Booted"),
                ]
            )
        self._host.record_login(account.username, True)
        headers = self._security(session, "SuccessfulAuth", "Informational")
        headers += [("UsingPassword", "0"), ("SessionTV", session.session_tv)]
        self._host.publish_event(headers)
        return True

    async def _logoff(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        session.send(
            [("Response", "Goodbye"), *_id(action_id), ("Message", "Thanks for all the fish.")]
        )
        return False

    async def _ping(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        session.send(
            [
                ("Response", "Success"),
                *_id(action_id),
                ("Ping", "Pong"),
                ("Timestamp", f"{self._host.epoch():.6f}"),
            ]
        )
        return True

    async def _events(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        """Guess (manager.c action_events): `Events: On`/`Off`, error on a bad mask."""
        mask = events_mask(header(action, "EventMask"))
        if mask is None:
            session.send(_error(action_id, "Invalid event mask"))
            return True
        session.send_events = mask
        state = "On" if mask else "Off"
        session.send([("Response", "Success"), *_id(action_id), ("Events", state)])
        return True

    def _list(
        self,
        session: AmiSession,
        action_id: str | None,
        message: str,
        events: Sequence[Sequence[tuple[str, str]]],
    ) -> bool:
        session.send(
            [
                ("Response", "Success"),
                *_id(action_id),
                ("EventList", "start"),
                ("Message", message),
            ]
        )
        for event in events:
            session.send(event)
        return True

    async def _queue_status(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        events = resync.queue_status(
            self._host.state, action_id, header(action, "Queue"), header(action, "Member")
        )
        return self._list(session, action_id, "Queue status will follow", events)

    async def _queue_summary(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        events = resync.queue_summary(self._host.state, action_id, header(action, "Queue"))
        return self._list(session, action_id, "Queue summary will follow", events)

    async def _core_show_channels(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        events = resync.core_show_channels(self._host.state, action_id)
        return self._list(session, action_id, "Channels will follow", events)

    async def _status(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        events = resync.status(
            self._host.state, action_id, header(action, "Channel"), header(action, "Variables")
        )
        if events is None:
            session.send(_error(action_id, "No such channel"))
            return True
        return self._list(session, action_id, "Channel status will follow", events)

    async def _bridge_list(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        events = resync.bridge_list(self._host.state, action_id, header(action, "BridgeType"))
        return self._list(session, action_id, "Bridge listing will follow", events)

    async def _bridge_info(
        self, session: AmiSession, action: Sequence[tuple[str, str]], action_id: str | None
    ) -> bool:
        """Guess for the error texts: the lab only captured a successful BridgeInfo."""
        bridge_id = header(action, "BridgeUniqueid")
        if not bridge_id:
            session.send(_error(action_id, "BridgeUniqueid must be provided"))
            return True
        events = resync.bridge_info(self._host.state, action_id, bridge_id)
        if events is None:
            session.send(_error(action_id, f"Bridge {bridge_id} not found"))
            return True
        return self._list(session, action_id, "Bridge channel listing will follow", events)


def _id(action_id: str | None) -> list[tuple[str, str]]:
    return [] if action_id is None else [("ActionID", action_id)]


def _error(action_id: str | None, message: str) -> list[tuple[str, str]]:
    return [("Response", "Error"), *_id(action_id), ("Message", message)]


def _ack(action_id: str | None, message: str) -> list[tuple[str, str]]:
    return [("Response", "Success"), *_id(action_id), ("Message", message)]
