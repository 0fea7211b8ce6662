"""`ivr-survey check`, the AMI part: what one short session proves about the account.

The session logs in once (fail2ban watches failed logins). A manager session cannot ask which
classes its account may read: manager.c has no such action, and the `Events` action only echoes
the mask it is given. So the check listens, and reasons from what arrives:

  * `system`: manager.c sends `FullyBooted` right after a login exactly when
    the account reads `system` (fact 2; fact 44 shows it reaching a listener
    with read = agent,call,system). Missing means the class is missing.
  * `agent` and `call`: confirmed by any event of that class during the
    watch. A queue event always comes with channel events (AgentCalled with
    DialBegin, AgentConnect with BridgeEnter, fact 8), so agent events
    without call events prove `call` is missing. `QueueStatus` needs no write
    class (fact 43); taken before and after the watch, a change in a queue's
    counters proves queue events were sent, so none arriving proves `agent`
    is missing (or filtered away). With no call at all the two classes stay
    unconfirmed: a WARN that says to run the check again during traffic.
  * classes it should not read: the `Privilege` header of every event names
    its class; anything but agent, call and system is a WARN (a read = all
    account sees its own `SuccessfulAuth`, class security, at once). Events
    that the shipped event filters drop (CEL, Newstate, ...) seen here mean
    the filters are missing: a WARN.
  * `CoreShowChannels`: allowed or not (it needs write = reporting; fact 43)
    says how complete the resync after a reconnect will be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk.actions import Action
from panoramisk.message import Message

from ivr.adapters.ami.client import Utf8AmiProtocol, to_event
from ivr.admin.findings import Finding, Status
from ivr.config.values import AmiConfig
from ivr.core.domain import AmiEvent

log = logging.getLogger(__name__)

NEEDED_CLASSES = frozenset({"agent", "call", "system"})
"""The AMI read classes the service uses (see dialplan/manager-ivr-survey.conf)."""

FILTERED_EVENTS = frozenset(
    {
        "Newstate",
        "NewCallerid",
        "NewConnectedLine",
        "NewAccountCode",
        "CEL",
        "DeviceStateChange",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "LocalBridge",
        "DialState",
        "SoftHangupRequest",
        "HangupRequest",
        "BridgeCreate",
        "BridgeDestroy",
        "Hold",
        "Unhold",
        "OriginateResponse",
        "VarSet",
        "Newexten",
        "AGIExecStart",
        "AGIExecEnd",
        "Cdr",
    }
)
"""Events the shipped manager snippet filters out, because the service never uses them."""

QUEUE_EVENTS_WITH_CHANNEL_EVENTS = frozenset(
    {"AgentCalled", "AgentConnect", "AgentComplete", "QueueCallerAbandon"}
)
"""Agent-class events that Asterisk always sends together with call-class ones (fact 8, 11)."""

FULLY_BOOTED_WAIT = 1.0
AFTER_WATCH_GRACE = 0.3


@dataclass(frozen=True, slots=True)
class AmiProbe:
    """What one short AMI session showed; `assess_ami` turns it into findings."""

    connect_error: str | None = None
    login_error: str | None = None
    version: str | None = None
    events: tuple[AmiEvent, ...] = ()
    queues_before: Mapping[str, tuple[str, ...]] | None = None
    queues_after: Mapping[str, tuple[str, ...]] | None = None
    core_show_channels: str | None = None
    """`allowed`, `denied`, or None when it could not be tried."""
    list_commands: Mapping[str, str] | None = None
    """ListCommands' answer (action -> "synopsis (Priv: ...)"), None if unavailable."""
    lost: bool = False


class _Session:
    """The factory side of panoramisk's AMI protocol, for one short session.

    `Utf8AmiProtocol` (the service's own framing) calls back into this object
    exactly as it does into `ivr.adapters.ami.client.AmiClient`; nothing is re-sent after a
    disconnection, because a check never reconnects.
    """

    def __init__(self, pbx: str) -> None:
        self._pbx = pbx
        self.events: list[AmiEvent] = []
        self.awaiting_actions: deque[Any] = deque()
        self.forgetable_actions: frozenset[str] = frozenset()
        self.lost = asyncio.Event()
        self.protocol: Utf8AmiProtocol | None = None

    def dispatch(self, message: Message) -> None:
        self.events.append(to_event(self._pbx, message, time.time()))

    def dispatch_headers(
        self, headers: dict[str, str], repeated: dict[str, tuple[str, ...]]
    ) -> None:
        self.events.append(
            AmiEvent(
                pbx=self._pbx,
                name=headers.get("Event", ""),
                headers=headers,
                received_at=time.time(),
                repeated=repeated,
            )
        )

    def connection_lost(self, exc: object) -> None:
        self.lost.set()

    async def send(self, action: dict[str, str], timeout: float) -> Any:
        """One action's answer: a Message, or a list of them for list actions."""
        assert self.protocol is not None
        if self.lost.is_set():
            raise ConnectionError("Asterisk closed the connection")
        # as_list=None lets panoramisk see from the reply whether a list follows,
        # so an Error reply to a list action resolves at once.
        future = self.protocol.send(Action(action, as_list=None), as_list=None)
        return await asyncio.wait_for(future, timeout)

    async def wait_for_event(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.name == name for event in self.events):
                return True
            await asyncio.sleep(0.02)
        return any(event.name == name for event in self.events)


async def probe_ami(config: AmiConfig, *, watch: float) -> AmiProbe:
    """Log in once, watch the events for `watch` seconds, try two actions, log off."""
    loop = asyncio.get_running_loop()
    session = _Session(config.name)
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(Utf8AmiProtocol, config.host, config.port),
            config.connect_timeout,
        )
    except (OSError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        return AmiProbe(connect_error=reason)
    protocol.factory = session
    protocol.log = log
    protocol.responses = {}
    session.protocol = protocol
    try:
        return await _probe_session(session, config, watch)
    except (TimeoutError, ConnectionError) as error:
        return AmiProbe(
            login_error=f"no answer ({error or type(error).__name__})",
            events=tuple(session.events),
            lost=session.lost.is_set(),
        )
    finally:
        protocol.close()


async def _probe_session(session: _Session, config: AmiConfig, watch: float) -> AmiProbe:
    timeout = config.action_timeout
    reply = await session.send(
        {
            "Action": "Login",
            "Username": config.username,
            "Secret": config.secret,
            "Events": "on",
        },
        timeout,
    )
    assert session.protocol is not None
    version = getattr(session.protocol, "version", None)
    if not _success(reply):
        message = _first(reply).get("Message", "") or "no reason given"
        return AmiProbe(login_error=message, version=version)
    await session.wait_for_event("FullyBooted", min(FULLY_BOOTED_WAIT, max(watch, 0.1)))
    before = await _queue_counters(session, timeout)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.lost.wait(), watch)
    after = await _queue_counters(session, timeout)
    await asyncio.sleep(AFTER_WATCH_GRACE)
    core_show_channels = await _try_core_show_channels(session, timeout)
    commands = await _list_commands(session, timeout)
    with contextlib.suppress(TimeoutError, ConnectionError):
        await session.send({"Action": "Logoff"}, 2.0)
    return AmiProbe(
        version=version,
        events=tuple(session.events),
        queues_before=before,
        queues_after=after,
        core_show_channels=core_show_channels,
        list_commands=commands,
        lost=session.lost.is_set(),
    )


def _first(reply: Any) -> Any:
    return reply[0] if isinstance(reply, list) else reply


def _success(reply: Any) -> bool:
    return bool(_first(reply).get("Response", "") == "Success")


async def _queue_counters(
    session: _Session, timeout: float
) -> Mapping[str, tuple[str, ...]] | None:
    """Per queue: waiting calls, completed, abandoned, and each member's calls taken.

    Asterisk changes each of these only together with a queue (agent-class)
    event: QueueCallerJoin/Leave, AgentComplete, QueueCallerAbandon.
    """
    try:
        reply = await session.send({"Action": "QueueStatus"}, timeout)
    except (TimeoutError, ConnectionError):
        return None
    messages = reply if isinstance(reply, list) else [reply]
    if not messages or not _success(messages):
        return None
    counters: dict[str, list[str]] = {}
    for message in messages:
        event = message.get("Event", "")
        queue = str(message.get("Queue", ""))
        if event == "QueueParams":
            counters.setdefault(queue, []).extend(
                str(message.get(key, "")) for key in ("Calls", "Completed", "Abandoned")
            )
        elif event == "QueueMember":
            counters.setdefault(queue, []).append(
                f"{message.get('Location', '')}={message.get('CallsTaken', '')}"
            )
    return {queue: tuple(values) for queue, values in counters.items()}


async def _try_core_show_channels(session: _Session, timeout: float) -> str | None:
    try:
        reply = await session.send({"Action": "CoreShowChannels"}, timeout)
    except (TimeoutError, ConnectionError):
        return None
    return "allowed" if _success(reply) else "denied"


async def _list_commands(session: _Session, timeout: float) -> Mapping[str, str] | None:
    try:
        reply = await session.send({"Action": "ListCommands"}, timeout)
    except (TimeoutError, ConnectionError):
        return None
    message = _first(reply)
    if not _success(message):
        return None
    skip = {"response", "actionid", "message", "content"}
    return {str(k): str(v) for k, v in message.items() if str(k).lower() not in skip}


def event_classes(event: AmiEvent) -> frozenset[str]:
    """The classes in an event's `Privilege` header (`call,all` -> {"call"})."""
    privilege = event.headers.get("Privilege", "")
    return frozenset(
        part.strip().lower() for part in privilege.split(",") if part.strip().lower() != "all"
    )


def writable_classes(commands: Mapping[str, str]) -> frozenset[str]:
    """Write classes an account certainly has, from ListCommands' `(Priv: ...)` notes.

    manager.c lists an action when the account's write classes share one with
    the action's; an action that needs a single class therefore proves it.
    """
    proven: set[str] = set()
    for description in commands.values():
        _, marker, privilege = description.rpartition("(Priv: ")
        if not marker:
            continue
        needed = {p.strip().lower() for p in privilege.rstrip(")").split(",") if p.strip() != "all"}
        needed.discard("<none>")
        if len(needed) == 1:
            proven |= needed
    return frozenset(proven)


def assess_ami(probe: AmiProbe, config: AmiConfig, *, watch: float) -> list[Finding]:
    """The findings of one AMI probe (pure, so every case is a table test)."""
    where = f"{config.host}:{config.port}"
    if probe.connect_error is not None:
        return [
            Finding(
                Status.FAIL,
                "AMI",
                f"cannot connect to {where}: {probe.connect_error} "
                "(manager.conf [general]: enabled = yes, port, bindaddr; firewall)",
            )
        ]
    if probe.login_error is not None:
        return [
            Finding(
                Status.FAIL,
                "AMI",
                f"login as {config.username!r} at {where} refused: {probe.login_error} "
                "(check the secret, and that this host is in the account's permit= lines)",
            )
        ]
    banner = f" (AMI {probe.version})" if probe.version else ""
    found = [Finding(Status.OK, "AMI", f"logged in to {where} as {config.username!r}{banner}")]
    seen: dict[str, Counter[str]] = {}
    for event in probe.events:
        for name in event_classes(event):
            seen.setdefault(name, Counter())[event.name] += 1
    found.extend(_needed_classes(probe, seen, watch))
    found.extend(_unneeded(probe, seen))
    found.extend(_resync(probe))
    if probe.lost:
        found.append(Finding(Status.WARN, "AMI", "Asterisk closed the session during the check"))
    return found


def _needed_classes(
    probe: AmiProbe, seen: Mapping[str, Counter[str]], watch: float
) -> list[Finding]:
    found: list[Finding] = []
    if "system" in seen:
        found.append(Finding(Status.OK, "AMI read", "class system (FullyBooted after login)"))
    else:
        found.append(
            Finding(
                Status.FAIL,
                "AMI read",
                "no FullyBooted after login: the account does not read class system "
                "(read = agent,call,system), so the service would not notice a restart",
            )
        )
    changed = _changed_queues(probe)
    agent_events = seen.get("agent", Counter())
    for name in ("agent", "call"):
        if name in seen:
            useful = [e for e, _ in seen[name].most_common() if e not in FILTERED_EVENTS]
            examples = ", ".join((useful or list(seen[name]))[:3])
            found.append(Finding(Status.OK, "AMI read", f"class {name} (seen: {examples})"))
            continue
        if name == "agent" and changed:
            proof = f"queue {', '.join(changed)} changed during the check"
        elif name == "call" and QUEUE_EVENTS_WITH_CHANNEL_EVENTS & set(agent_events):
            proof = "queue events arrived without their channel events"
        else:
            found.append(
                Finding(
                    Status.WARN,
                    "AMI read",
                    f"class {name} not confirmed: no call during the {watch:g} s watch "
                    "(run `ivr-survey check --ami-watch 60` while calls are in progress)",
                )
            )
            continue
        found.append(
            Finding(
                Status.FAIL,
                "AMI read",
                f"no {name} event although {proof}: add {name} to the account's read = "
                "and make sure no eventfilter drops those events",
            )
        )
    return found


def _changed_queues(probe: AmiProbe) -> list[str]:
    before, after = probe.queues_before, probe.queues_after
    if before is None or after is None:
        return []
    return sorted(q for q in set(before) | set(after) if before.get(q) != after.get(q))


def _unneeded(probe: AmiProbe, seen: Mapping[str, Counter[str]]) -> list[Finding]:
    found: list[Finding] = []
    for name in sorted(set(seen) - NEEDED_CLASSES):
        examples = ", ".join(event for event, _ in seen[name].most_common(3))
        found.append(
            Finding(
                Status.WARN,
                "AMI read",
                f"the account reads class {name}, which the service does not use "
                f"(seen: {examples}): set read = agent,call,system",
            )
        )
    unfiltered = Counter(e.name for e in probe.events if e.name in FILTERED_EVENTS)
    if unfiltered:
        listed = ", ".join(f"{name} x{count}" for name, count in unfiltered.most_common(5))
        found.append(
            Finding(
                Status.WARN,
                "AMI filters",
                f"events the service ignores arrive ({listed}): add the eventfilter lines "
                "of dialplan/manager-ivr-survey.conf to cut the traffic",
            )
        )
    if probe.list_commands is not None:
        risky = sorted(writable_classes(probe.list_commands) - {"reporting"})
        if risky:
            found.append(
                Finding(
                    Status.WARN,
                    "AMI write",
                    f"the account may send actions of class {', '.join(risky)}; the service "
                    "sends none: set write = (empty) or write = reporting",
                )
            )
    return found


def _resync(probe: AmiProbe) -> list[Finding]:
    if probe.core_show_channels == "allowed":
        return [
            Finding(
                Status.OK,
                "AMI resync",
                "CoreShowChannels allowed: after a reconnect, calls already bridged are found",
            )
        ]
    if probe.core_show_channels == "denied":
        return [
            Finding(
                Status.OK,
                "AMI resync",
                "CoreShowChannels not allowed (no write = reporting): after a reconnect, "
                "bridged calls are credited from setinterfacevar/setqueuevar variables",
            )
        ]
    return []
