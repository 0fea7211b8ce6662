"""AMI adapter: keeps one logged-in manager session and turns its events into AmiEvents.

panoramisk 1.4's `AMIProtocol` and `Message` parse AMI well and are kept.
Its `Manager` is not used, for the traps proven in tests/test_panoramisk_traps.py:
`connect()` resolves at TCP connect rather than login, a wrong secret is
retried every 2 s forever, ping replies are never checked, actions have no
timeout, and async callbacks run unordered with their exceptions lost. Here:

- a session counts as up only after `Response: Success` to Login;
- reconnects back off exponentially; a refused login is reported once per
  attempt and backs off from `auth_retry_min` (fail2ban watches AMI logins);
- a Ping must be answered within `ping_timeout`, or the connection is
  declared dead and dropped (half-open TCP is otherwise never noticed);
- every action has a timeout;
- events go, in arrival order, onto one queue consumed by ONE task;
- bytes are framed before they are decoded, so a UTF-8 character split
  across two TCP reads (a Persian or Russian caller name) is kept whole.
After each login, calls in progress are resynced with QueueStatus and
CoreShowChannels, because AMI never replays events missed while down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ivr.adapters.ami.framing import MAX_MESSAGE_BYTES, is_runaway, split_messages, take_banner
from ivr.config.values import AmiConfig
from ivr.core.domain import AmiEvent

log = logging.getLogger(__name__)

EventSink = Callable[[AmiEvent], None]

EOL = "\r\n"
# ActionIDs of lists given up on (timed out, too long), remembered so their
# late items are dropped instead of collected or taken for live events.
MAX_ABANDONED_LISTS = 64


class AmiLoginRefused(Exception):
    """Asterisk answered Login with an error (wrong user, secret or permit/deny)."""


class AmiListTooLong(Exception):
    """A list action's answer passed [ami] max_list_items: it is given up on."""


class AmiConnectionLost(Exception):
    """The manager connection went away while an action waited for its answer."""


class Utf8AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped: an Any base
    """panoramisk's protocol with framing that keeps characters and reports garbage.

    The parent decodes each TCP chunk on its own with errors='ignore', so the
    two halves of a `Ñ` split across reads are both dropped, and it skips any
    message it cannot parse without a word. Here bytes are framed first
    (ivr.adapters.ami.framing) and only whole messages are decoded (invalid
    bytes become U+FFFD, visible in the stored name rather than gone), an
    unparseable message is logged, and a message that never ends is refused
    instead of growing memory. panoramisk's `Message` parser and its routing
    of responses to actions are kept.
    """

    max_list_items = 50_000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self._buffer = b""
        self._abandoned: dict[str, None] = {}
        self.dropped_list_items = 0

    def abandon(self, action: Action) -> None:
        """Stop collecting a list action's answer (it timed out or grew too long)."""
        for key in {action.id, action.action_id} - {None}:
            self.responses.pop(key, None)
            self._abandoned[key] = None
        while len(self._abandoned) > MAX_ABANDONED_LISTS:
            del self._abandoned[next(iter(self._abandoned))]

    def handle_message(self, message: Message) -> None:
        """panoramisk's routing, with a bound on what one list may collect."""
        key = message.id or message.action_id
        if key is not None and key in self._abandoned:
            self.dropped_list_items += 1
            return
        action = self.responses.get(key) if key is not None else None
        if action is not None and len(action.responses) >= self.max_list_items:
            self.abandon(action)
            self.dropped_list_items += 1
            if not action.future.done():
                action.future.set_exception(
                    AmiListTooLong(
                        f"{action.get('action', action.get('Action', '?'))} answered more than "
                        f"{self.max_list_items} items ([ami] max_list_items)"
                    )
                )
            return
        super().handle_message(message)

    def data_received(self, data: bytes) -> None:
        # Only the new bytes (and the 3 before them) can complete a message
        # end, so a long message in small reads is not rescanned.
        scan_from = max(0, len(self._buffer) - 3)
        self._buffer += data
        if getattr(self, "version", None) is None:
            version, rest = take_banner(self._buffer)
            if version is not None:
                self.version, self._buffer, scan_from = version, rest, 0
        complete, self._buffer = split_messages(self._buffer, scan_from)
        for raw in complete:
            try:
                text = raw.decode()  # the strict decoder is the faster one
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
            if not (text.startswith("Event: ") and self._deliver_event(text)):
                self._receive(text)
        # Read from this module's globals, so tests and fuzzers can patch the limit small.
        if is_runaway(self._buffer, MAX_MESSAGE_BYTES):
            log.error(
                "AMI: a message grew past %d bytes without ending; dropping the connection",
                MAX_MESSAGE_BYTES,
            )
            self._buffer = b""
            self.transport.close()

    def _receive(self, text: str) -> None:
        """panoramisk's parsing and routing, logging instead of raising on what it cannot parse."""
        message = Message.from_line(text)
        if message is None:
            log.warning("AMI: ignored a message with neither Event nor Response: %r", text[:200])
            return
        try:
            self.handle_message(message)
        except Exception as error:
            # panoramisk assumes well-formed headers (a repeated ActionID
            # or Event makes a list it cannot hash or lowercase).
            log.warning(
                "AMI: ignored a malformed message (%s: %s): %r",
                type(error).__name__,
                error,
                text[:200],
            )

    def _deliver_event(self, text: str) -> bool:
        """Hand an unsolicited event straight to the factory, as plain headers.

        Events are most of the traffic; building panoramisk's case-insensitive
        Message for each costs more than tracking the call (bench/ami_ingest.py).
        Events answering a pending action (list items) and Shutdown, which
        panoramisk's protocol treats as a lost connection, take its usual path.
        """
        headers: dict[str, str] = {}
        repeated: dict[str, list[str]] = {}
        for line in text.split(EOL):
            name, separator, value = line.partition(": ")
            if not separator:
                if not line.endswith(":"):
                    continue
                name, value = line[:-1], ""
            if name in headers:
                repeated.setdefault(name, [headers[name]]).append(value)
            else:
                headers[name] = value
        action_id = headers.get("ActionID")
        if headers.get("Event") == "Shutdown" or (
            action_id and (action_id in self.responses or action_id in self._abandoned)
        ):
            return False
        self.factory.dispatch_headers(headers, {k: tuple(v) for k, v in repeated.items()})
        return True


class _EverythingForgettable:
    """Tells panoramisk's protocol never to queue an action for re-sending.

    On reconnect panoramisk re-sends pending actions after FullyBooted; ours
    fail fast instead and the resync rebuilds state from scratch.
    """

    def __contains__(self, item: object) -> bool:
        return True


def to_event(pbx: str, message: Message, received_at: float) -> AmiEvent:
    """panoramisk Message -> AmiEvent, keeping every header's spelling."""
    headers: dict[str, str] = {}
    repeated: dict[str, tuple[str, ...]] = {}
    for name, value in message.items():
        if name == "content":
            continue
        if isinstance(value, list):
            repeated[name] = tuple(str(item) for item in value)
            headers[name] = str(value[0]) if value else ""
        else:
            headers[name] = str(value)
    return AmiEvent(
        pbx=pbx,
        name=headers.get("Event", ""),
        headers=headers,
        received_at=received_at,
        repeated=repeated,
    )


class AmiClient:
    """One PBX's manager session, kept alive for as long as the service runs."""

    def __init__(
        self,
        config: AmiConfig,
        sink: EventSink,
        *,
        on_login: Callable[[], Coroutine[Any, Any, None]] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._sink = sink
        self._on_login = on_login
        self._clock = clock
        self._rng = rng or random.Random()
        self._protocol: Utf8AmiProtocol | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._logged_in = asyncio.Event()
        self._pending: set[asyncio.Future[Any]] = set()
        self.awaiting_actions: deque[Any] = deque()
        self.forgetable_actions = _EverythingForgettable()
        self._leaving = False
        # Set while PbxLink holds reading back (its event queue is full): an
        # unanswered Ping then proves nothing about the connection.
        self._reading_paused = False
        self.logins = 0
        self.resync_seconds: deque[float] = deque(maxlen=16)

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    async def wait_logged_in(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._logged_in.wait(), timeout)
        return self._logged_in.is_set()

    async def run(self) -> None:
        """Connect, log in, serve, and reconnect with backoff until cancelled."""
        failures = 0
        where = f"{self._config.host}:{self._config.port}"
        while True:
            refused = False
            try:
                await self._session()
                failures = 0
                if self._leaving:
                    log.info("AMI %s (%s): logged off", self._config.name, where)
                    return
                log.warning("AMI %s (%s): connection lost; reconnecting", self._config.name, where)
            except AmiLoginRefused as error:
                refused = True
                failures += 1
                log.error(
                    "AMI %s (%s): login refused for user %r: %s",
                    self._config.name,
                    where,
                    self._config.username,
                    error,
                )
            except (OSError, TimeoutError, AmiConnectionLost) as error:
                if self._leaving:
                    return
                failures += 1
                log.warning(
                    "AMI %s (%s): cannot connect: %s",
                    self._config.name,
                    where,
                    error or type(error).__name__,
                )
            finally:
                self._logged_in.clear()
                self._close_transport()
            delay = self._backoff(failures, refused=refused)
            if failures:
                log.warning("AMI %s: next attempt in %.1f s", self._config.name, delay)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int, *, refused: bool) -> float:
        base = self._config.auth_retry_min if refused else self._config.reconnect_min
        ceiling = max(self._config.reconnect_max, base)
        if failures == 0:
            return self._config.reconnect_min
        delay = min(ceiling, base * 2.0 ** (failures - 1))
        return delay * (0.8 + 0.4 * self._rng.random())

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        self._reading_paused = False
        _, protocol = await asyncio.wait_for(
            loop.create_connection(Utf8AmiProtocol, self._config.host, self._config.port),
            self._config.connect_timeout,
        )
        protocol.factory = self
        protocol.log = log
        protocol.responses = {}
        protocol.max_list_items = self._config.max_list_items
        self._protocol = protocol
        reply = await self.send_action(
            {
                "Action": "Login",
                "Username": self._config.username,
                "Secret": self._config.secret,
                "Events": "on",
            }
        )
        if not reply.success:
            raise AmiLoginRefused(reply.get("Message", "") or "no reason given")
        self.logins += 1
        self._logged_in.set()
        log.info(
            "AMI %s: logged in to %s:%d as %r",
            self._config.name,
            self._config.host,
            self._config.port,
            self._config.username,
        )
        # The resync runs beside the keepalive: if Asterisk stops answering in
        # the middle of it, the unanswered Ping is what notices.
        resync: asyncio.Task[None] | None = None
        if self._on_login is not None:
            resync = asyncio.create_task(self._on_login())
        try:
            await self._keepalive()
        finally:
            if resync is not None and not resync.done():
                resync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resync

    async def _keepalive(self) -> None:
        """Ping on a timer; a ping unanswered in time means the connection is dead."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._config.ping_interval)
            if self._lost.is_set():
                return
            try:
                await self.send_action({"Action": "Ping"}, timeout=self._config.ping_timeout)
            except TimeoutError:
                if self._reading_paused:
                    continue  # the answer waits unread behind our own backlog of events
                log.warning(
                    "AMI %s: no answer to Ping in %.1f s; dropping the connection",
                    self._config.name,
                    self._config.ping_timeout,
                )
                return

    async def send_action(
        self, action: dict[str, str], *, timeout: float | None = None, as_list: bool | None = None
    ) -> Any:
        """Send an action and wait for its answer (a Message, or a list for list actions)."""
        protocol = self._protocol
        if protocol is None or self._lost.is_set():
            raise AmiConnectionLost("not connected")
        sent = Action(action, as_list=as_list)
        future: asyncio.Future[Any] = protocol.send(sent, as_list=as_list)
        self._pending.add(future)
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), timeout or self._config.action_timeout
            )
        except TimeoutError:
            protocol.abandon(sent)
            raise
        finally:
            self._pending.discard(future)

    async def resync(self) -> list[AmiEvent]:
        """Ask for the calls in progress; return the list events in the order received.

        QueueStatus lists callers still waiting but not those talking to an agent
        (fact 41); CoreShowChannels lists those. A least-privilege account is
        refused CoreShowChannels (fact 43) but may send BridgeList and
        BridgeInfo, which show which channels share a bridge: enough to find each
        caller's agent.
        """
        started = time.monotonic()
        events = await self._list({"Action": "QueueStatus"}) or []
        channels = await self._list({"Action": "CoreShowChannels"})
        if channels is not None:
            events += channels
        else:
            for bridge in await self._list({"Action": "BridgeList"}) or []:
                if bridge.name == "BridgeListItem":
                    uniqueid = bridge.get("BridgeUniqueid")
                    action = {"Action": "BridgeInfo", "BridgeUniqueid": uniqueid}
                    events += await self._list(action) or []
        self.resync_seconds.append(time.monotonic() - started)
        return events

    async def _list(self, action: dict[str, str]) -> list[AmiEvent] | None:
        """One list action's events, or None when it was refused or failed."""
        name = action["Action"]
        try:
            # Not as_list=True: panoramisk then waits for a second message that a
            # refusal (`Response: Error` alone) never sends. Left to itself it
            # collects `EventList: start` answers up to their *Complete event.
            reply = await self.send_action(action)
        except (TimeoutError, AmiConnectionLost, AmiListTooLong) as error:
            log.warning(
                "AMI %s: %s for resync failed: %s",
                self._config.name,
                name,
                error or "no complete answer in time; its late items are dropped",
            )
            return None
        messages = reply if isinstance(reply, list) else [reply]
        head = messages[0] if messages else None
        if head is not None and head.get("Response") == "Error":
            log.info(
                "AMI %s: %s refused (%s); resync goes on without it",
                self._config.name,
                name,
                head.get("Message", ""),
            )
            return None
        now = self._clock()
        return [to_event(self._config.name, m, now) for m in messages if "Event" in m]

    def pause_reading(self) -> bool:
        """Stop reading the connection (the event queue is full); False if not connected."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            return False
        protocol.transport.pause_reading()
        self._reading_paused = True
        return True

    def resume_reading(self) -> None:
        self._reading_paused = False
        protocol = self._protocol
        transport = protocol.transport if protocol is not None else None
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    @property
    def dropped_list_items(self) -> int:
        """List items dropped on this connection: past [ami] max_list_items, or late."""
        return self._protocol.dropped_list_items if self._protocol is not None else 0

    async def logoff(self) -> None:
        """End the session for good: Asterisk closes it after the Logoff, and
        `run` returns instead of reconnecting."""
        self._leaving = True
        if self._protocol is not None and not self._lost.is_set():
            with contextlib.suppress(TimeoutError, AmiConnectionLost):
                await self.send_action({"Action": "Logoff"}, timeout=2.0)

    # --- the factory interface panoramisk's AMIProtocol calls back into -----

    def dispatch(self, message: Message) -> None:
        self._sink(to_event(self._config.name, message, self._clock()))

    def dispatch_headers(
        self, headers: dict[str, str], repeated: dict[str, tuple[str, ...]]
    ) -> None:
        self._sink(
            AmiEvent(
                pbx=self._config.name,
                name=headers.get("Event", ""),
                headers=headers,
                received_at=self._clock(),
                repeated=repeated,
            )
        )

    def connection_lost(self, exc: object) -> None:
        if isinstance(exc, Message):
            log.warning("AMI %s: Asterisk is shutting down (%s)", self._config.name, dict(exc))
        self._lost.set()
        self._logged_in.clear()
        for future in list(self._pending):
            if not future.done():
                future.set_exception(AmiConnectionLost("connection lost"))
        self._close_transport()

    def _close_transport(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            with contextlib.suppress(Exception):
                protocol.close()
