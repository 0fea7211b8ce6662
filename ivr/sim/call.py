"""One simulated call: the captured events replayed with this call's identities, and its survey.

The replay emits a flow template's events in captured order. Identifiers are
filled in as they first appear (so Uniqueids and Local channel numbers are
allocated in the same order Asterisk allocated them), and the values a real
PBX computes - hold, ring and talk times, CDR times and durations, queue
member statistics, what `NoOp(... ${VAR})` printed - are recomputed from
the call's virtual clock and the live state, so they agree with each other.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ivr.sim.agi import AgiLine, AgiSession, Prompts, connect
from ivr.sim.capture_catalogue import FIRST_QUEUE
from ivr.sim.clock import CallClock
from ivr.sim.keypad import Keypad
from ivr.sim.plan import CallPlan
from ivr.sim.state import SNAPSHOT_FIELDS, ChannelState, PbxState, read_variable, substitute
from ivr.sim.template_event import (
    AGENT_EXTEN,
    AGENT_IFACE,
    AGENT_NAME,
    AGENT_PEER,
    BRIDGE,
    CALLER_NAME,
    CALLER_NUM,
    CHAN,
    QUEUE,
    STEM,
    UID,
    TemplateEvent,
    TimedEvent,
    Token,
)
from ivr.sim.templates import FlowTemplate

Header = tuple[str, str]
_NOOP_VARIABLES = (
    (re.compile(r"(?<=\bqueue=)\S*"), "QUEUENAME"),
    (re.compile(r"(?<=\bmember=).*$"), "MEMBERNAME"),
    (re.compile(r"(?<=\bMEMBERNAME=).*$"), "MEMBERNAME"),
    (re.compile(r"(?<=\bQUEUESTATUS=)\S*"), "QUEUESTATUS"),
    (re.compile(r"(?<=\bAGISTATUS=)\S*"), "AGISTATUS"),
    (re.compile(r"(?<=\bNPS=)\S*"), "NPS_SCORE"),
    (re.compile(r"(?<=\bBLINDTRANSFER=)\S*"), "BLINDTRANSFER"),
    (re.compile(r"(?<=\bATTENDEDTRANSFER=)\S*"), "ATTENDEDTRANSFER"),
)
_EPSILON = 1e-6
_MEMBER_STATS = frozenset({"CallsTaken", "LastCall", "LoginTime", "InCall"})


@dataclass(frozen=True)
class CallResult:
    """What happened to a simulated call, for the test that placed it.

    `agi_status` is the AGISTATUS the dialplan saw (None when the call never
    reached AGI()); `agi_closed_by_service` is False when the simulator had
    to end the FastAGI session itself (session limit, PBX restart or stop).
    """

    linkedid: str
    caller_uniqueid: str
    caller_channel: str
    agi_status: str | None
    agi_lines: tuple[AgiLine, ...]
    agi_closed_by_service: bool


@dataclass(frozen=True)
class CallSettings:
    """The PBX-wide settings a call reads."""

    agi_host: str
    agi_port: int
    time_scale: float
    prompts: Prompts
    agi_session_limit: float
    agi_source: str | None = None


class CallHost(Protocol):
    """What a call needs from its PBX."""

    state: PbxState
    rng: random.Random

    def publish(self, headers: Sequence[Header], clock: CallClock) -> None: ...

    def new_uniqueid(self) -> str: ...

    def new_channel_number(self, technology: str) -> int: ...

    def epoch(self) -> float: ...


def _floor(seconds: float) -> int:
    return int(max(0.0, seconds) + _EPSILON)


class _Rule(enum.Enum):
    """How a rendered header's value is recomputed from the live call."""

    KEEP = enum.auto()
    CALLER_NAME = enum.auto()
    CALLER_NUMBER = enum.auto()
    LANGUAGE = enum.auto()
    APPDATA = enum.auto()
    CEL_TIME = enum.auto()
    CDR = enum.auto()
    VARSET = enum.auto()
    DURATION = enum.auto()
    MEMBER_STAT = enum.auto()


_CDR_TIMES = frozenset({"StartTime", "AnswerTime", "EndTime", "Duration", "BillableSeconds"})
_QUEUE_DURATION_EVENTS = frozenset({"AgentConnect", "AgentComplete", "QueueCallerAbandon"})


def _header_rule(event: str, key: str) -> _Rule:
    """Decided by the event and header name alone, so once per template, not per call.

    A value starting `agi://` (the AGI URL) is replaced whatever its rule.
    """
    if key.endswith(("CallerIDName", "LineName")):
        return _Rule.CALLER_NAME
    if key.endswith(("CallerIDNum", "LineNum")):
        return _Rule.CALLER_NUMBER
    if key.endswith("Language"):
        return _Rule.LANGUAGE
    if event == "Newexten" and key == "AppData":
        return _Rule.APPDATA
    if event == "CEL" and key == "EventTime":
        return _Rule.CEL_TIME
    if event == "Cdr" and key in _CDR_TIMES:
        return _Rule.CDR
    if event == "VarSet" and key == "Value":
        return _Rule.VARSET
    if event in _QUEUE_DURATION_EVENTS and key in ("HoldTime", "TalkTime", "RingTime"):
        return _Rule.DURATION
    if event == "QueueMemberStatus" and key in _MEMBER_STATS:
        return _Rule.MEMBER_STAT
    return _Rule.KEEP


@functools.cache
def _header_rules(event: str, keys: tuple[str, ...]) -> tuple[_Rule, ...]:
    """The rule of each rendered header: the leading `Event` one, then `keys`."""
    return (_Rule.KEEP, *(_header_rule(event, key) for key in keys))


class Call:
    """Replays one `CallPlan` on a PBX; `run()` returns when its last event is out."""

    def __init__(
        self, host: CallHost, settings: CallSettings, plan: CallPlan, template: FlowTemplate
    ) -> None:
        self._host = host
        self._settings = settings
        self.plan = plan
        self._template = template
        self.clock = CallClock(host.epoch())
        self._virtual = 0.0
        self._bases: dict[str, str] = {}
        self._uids: dict[str, str] = {}
        self._bridges: dict[str, str] = {}
        self._language_applied = False
        self._last: dict[str, float] = {}
        self._holds: dict[tuple[str, str], int] = {}
        self._joins: dict[tuple[str, str], float] = {}
        self._connects: dict[tuple[str, str], float] = {}
        self._called: dict[tuple[str, str], float] = {}
        self._member: tuple[str, str] | None = None
        self._snapshots: dict[str, list[Header]] = {}
        self._shutdown = asyncio.Event()
        self._deadline = 0.0
        self._session: AgiSession | None = None
        self._status_override: str | None = None
        self._left_open: str | None = None
        self.rate = 1.0 / settings.time_scale if settings.time_scale > 0 else 0.0

    # ---- identities -------------------------------------------------------------------

    def _base(self, role: str) -> str:
        if role not in self._bases:
            stem = self._stem(role)
            number = self._host.new_channel_number(stem.split("/", 1)[0])
            self._bases[role] = f"{stem}-{number:08x}"
        return self._bases[role]

    def _stem(self, role: str) -> str:
        if role.startswith("agent"):
            return self.plan.agents[int(role[len("agent") :])].stem
        return self._template.stems[role]

    def channel(self, role: str) -> str:
        base_role, _, half = role.partition(";")
        base = self._base(base_role)
        return f"{base};{half}" if half and base.startswith("Local/") else base

    def uniqueid(self, role: str) -> str:
        if role not in self._uids:
            self._uids[role] = self._host.new_uniqueid()
        return self._uids[role]

    @property
    def left_open(self) -> bool:
        """A restart found the FastAGI socket open and the service never closed it."""
        return self._left_open is not None

    @property
    def template(self) -> FlowTemplate:
        return self._template

    @property
    def linkedid(self) -> str:
        return self.uniqueid(self._template.first)

    def _resolve(self, token: Token) -> str:
        kind, key = token
        if kind == UID:
            return self.uniqueid(key)
        if kind == CHAN:
            return self.channel(key)
        if kind == STEM:
            return self._stem(key)
        if kind == BRIDGE:
            if key not in self._bridges:
                self._bridges[key] = str(uuid.UUID(int=self._host.rng.getrandbits(128), version=4))
            return self._bridges[key]
        if kind == QUEUE:
            return self.plan.queue if key == FIRST_QUEUE else self.plan.transfer_queue
        if kind in (AGENT_NAME, AGENT_IFACE, AGENT_PEER, AGENT_EXTEN):
            agent = self.plan.agents[int(key)]
            return {
                AGENT_NAME: agent.name,
                AGENT_IFACE: agent.interface,
                AGENT_PEER: agent.dialed_peer,
                AGENT_EXTEN: agent.exten,
            }[kind]
        if kind == CALLER_NUM:
            return self.plan.caller_number
        if kind == CALLER_NAME:
            return self.plan.caller_name
        raise ValueError(f"unknown token {token}")

    # ---- rendering --------------------------------------------------------------------

    def render(self, event: TemplateEvent) -> list[Header]:
        headers: list[Header] = [("Event", event.name)]
        resolve = self._resolve
        for (key, value), literal in zip(event.headers, event.literals, strict=True):
            text = (
                literal
                if literal is not None
                else "".join(p if isinstance(p, str) else resolve(p) for p in value)
            )
            headers.append((key, text))
        return self._adjust(event, headers)

    def _adjust(self, event: TemplateEvent, headers: list[Header]) -> list[Header]:
        values = dict(headers)
        state = self._host.state
        channel = state.channel(values.get("Channel", ""))
        caller = self.channel(self._template.caller)
        now = self.clock.now()
        name = event.name
        self._track(name, values, now)
        if event.borrowed and channel is not None:
            headers = [
                (k, channel.snapshot[k] if k in SNAPSHOT_FIELDS and k in channel.snapshot else v)
                for k, v in headers
            ]
        rules = _header_rules(name, event.keys)
        out: list[Header] = []
        for (key, value), rule in zip(headers, rules, strict=True):
            if value.startswith("agi://"):
                out.append((key, self.agi_url()))
            elif rule is _Rule.KEEP:
                out.append((key, value))
            else:
                live = self._value(
                    rule,
                    event=name,
                    key=key,
                    value=value,
                    values=values,
                    channel=channel,
                    caller=caller,
                    now=now,
                )
                out.append((key, live))
        return out

    def _value(
        self,
        rule: _Rule,
        *,
        event: str,
        key: str,
        value: str,
        values: dict[str, str],
        channel: ChannelState | None,
        caller: str,
        now: float,
    ) -> str:
        """The value a live PBX would put in this header (see `_header_rule`)."""
        if rule is _Rule.CALLER_NAME:
            return "<unknown>" if not value and not self.plan.caller_name else value
        if rule is _Rule.CALLER_NUMBER:
            return "<unknown>" if not value and not self.plan.caller_number else value
        if rule is _Rule.LANGUAGE:
            prefix = key[: -len("Language")]
            if self._language_applied and values.get(f"{prefix}Channel") == caller:
                return self.plan.language
            return value
        if rule is _Rule.APPDATA:
            return self._appdata(values, value, channel, caller)
        if rule is _Rule.CEL_TIME:
            return self.clock.datetime()
        if rule is _Rule.CDR:
            return value if channel is None else self._cdr(key, value, channel, now)
        if rule is _Rule.VARSET:
            return self._varset_value(values.get("Variable", ""), value, channel, now)
        if rule is _Rule.DURATION:
            return self._duration(event, key, values, now)
        if key == "InCall" and values.get("Status") == "1":
            return "0"
        return self._member_stat(values.get("Queue", ""), values.get("Interface", ""), key)

    def _appdata(
        self, values: dict[str, str], value: str, channel: ChannelState | None, caller: str
    ) -> str:
        application = values.get("Application")
        if application == "Set" and value.startswith("CHANNEL(language)="):
            if values.get("Channel") == caller:
                self._language_applied = True
            return f"CHANNEL(language)={self.plan.language}"
        if application == "NoOp" and channel is not None:
            for pattern, variable in _NOOP_VARIABLES:
                current = self._variable(channel, variable)
                value = pattern.sub(current.replace("\\", "\\\\"), value, count=1)
        return value

    def _variable(self, channel: ChannelState, variable: str) -> str:
        if variable == "AGISTATUS" and self._status_override is not None:
            return self._status_override
        return channel.variable(variable) or ""

    def _track(self, event: str, values: dict[str, str], now: float) -> None:
        source = values.get("Channel", "")
        queue = values.get("Queue", "")
        if event == "QueueCallerJoin":
            self._joins[(source, queue)] = now
            self._last["join"] = now
        elif event == "AgentCalled":
            self._called[(source, values.get("DestChannel", ""))] = now
            self._member = (queue, values.get("Interface", ""))
        elif event == "DialBegin" and source:
            self._last["dial"] = now
        elif event == "AgentConnect":
            self._connects[(source, queue)] = now
            self._last["connect"] = now

    def _duration(self, event: str, key: str, values: dict[str, str], now: float) -> str:
        source, queue = values.get("Channel", ""), values.get("Queue", "")
        joined = self._joins.get((source, queue), now)
        if key == "RingTime":
            return str(_floor(now - self._called.get((source, values.get("DestChannel", "")), now)))
        if key == "TalkTime":
            return str(_floor(now - self._connects.get((source, queue), now)))
        if event == "AgentConnect":
            self._holds[(source, queue)] = _floor(now - joined)
        return str(self._holds.get((source, queue), _floor(now - joined)))

    def _member_stat(self, queue: str, interface: str, key: str) -> str:
        state = self._host.state
        known = state.queues.get(queue)
        member = known.members.get(interface) if known is not None else None
        if member is None:
            return "0" if key != "LoginTime" else str(state.login_time)
        return str(
            {
                "CallsTaken": member.calls_taken,
                "LastCall": member.last_call,
                "LoginTime": member.login_time,
                "InCall": member.in_call,
            }[key]
        )

    def _varset_value(
        self, variable: str, value: str, channel: ChannelState | None, now: float
    ) -> str:
        if not value:
            return value
        if variable == "AGISTATUS" and self._status_override is not None:
            return self._status_override
        since = {
            "QEHOLDTIME": "join",
            "QUEUEWAIT": "join",
            "QUEUEWAIT_MS": "join",
            "ANSWEREDTIME": "connect",
            "ANSWEREDTIME_MS": "connect",
            "DIALEDTIME": "dial",
            "DIALEDTIME_MS": "dial",
        }.get(variable)
        if since is not None:
            elapsed = now - self._last.get(since, now)
            return str(round(elapsed * 1000)) if variable.endswith("_MS") else str(_floor(elapsed))
        if variable in ("MEMBERCALLS", "MEMBERLASTCALL") and self._member is not None:
            key = "CallsTaken" if variable == "MEMBERCALLS" else "LastCall"
            return self._member_stat(self._member[0], self._member[1], key)
        queue_stats = ("QUEUECALLS", "QUEUEHOLDTIME", "QUEUETALKTIME", "QUEUECOMPLETED")
        if variable in (*queue_stats, "QUEUEABANDONED") and channel is not None:
            known = self._host.state.queues.get(channel.variable("QUEUENAME") or "")
            if known is not None:
                return str(
                    {
                        "QUEUECALLS": len(known.waiting),
                        "QUEUEHOLDTIME": known.holdtime,
                        "QUEUETALKTIME": known.talktime,
                        "QUEUECOMPLETED": known.completed,
                        "QUEUEABANDONED": known.abandoned,
                    }[variable]
                )
        return value

    def _cdr(self, key: str, value: str, channel: ChannelState, now: float) -> str:
        start, end = channel.cdr_span(channel.cdrs, now)
        answered = None if channel.answered is None else min(end, max(start, channel.answered))
        if key == "StartTime":
            return self.clock.datetime(start)
        if key == "AnswerTime":
            return "" if not value or answered is None else self.clock.datetime(answered)
        if key == "EndTime":
            return self.clock.datetime(end)
        if key == "Duration":
            return str(_floor(end - start))
        if key == "BillableSeconds":
            return "0" if answered is None else str(_floor(end - answered))
        return value

    def agi_url(self) -> str:
        args = agi_arguments(self.plan, self.linkedid)
        base = f"agi://{self._settings.agi_host}:{self._settings.agi_port}/nps"
        return ",".join((base, *args))

    # ---- emitting -----------------------------------------------------------------------

    def emit(self, event: TemplateEvent) -> None:
        self._publish(self.render(event))

    def _publish(self, headers: list[Header]) -> None:
        channel = dict(headers).get("Channel")
        self._host.publish(headers, self.clock)
        if channel is not None:
            live = self._host.state.channel(channel)
            if live is not None:
                self._snapshots[channel] = live.headers()

    def live_event(self, name: str, privilege: str, role: str, extra: Sequence[Header]) -> None:
        """An event the survey causes, on the snapshot the channel has right now."""
        channel = self.channel(role)
        live = self._host.state.channel(channel)
        snapshot = live.headers() if live is not None else self._snapshots.get(channel, [])
        self._publish([("Event", name), ("Privilege", privilege), *snapshot, *extra])

    async def play(self, timed: Sequence[TimedEvent]) -> bool:
        """Replay events with their gaps; False if a shutdown cut the replay short."""
        scale = self._settings.time_scale
        for item in timed:
            gap = item.gap(self.plan)
            if gap > 0:
                self.clock.set(self._virtual, self.rate, self._virtual + gap)
                if await self._pause(gap * scale):
                    self._virtual = self.clock.now()
                    return False
            self._virtual += gap
            self.clock.set(self._virtual, self.rate, self._virtual)
            self.emit(item.event)
        return not self._shutdown.is_set()

    async def _pause(self, seconds: float) -> bool:
        if self._shutdown.is_set():
            return True
        try:
            await asyncio.wait_for(self._shutdown.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # ---- the call ---------------------------------------------------------------------------

    def request_shutdown(self, deadline: float) -> None:
        """A PBX restart: hang up now; a FastAGI session may stay until `deadline`."""
        self._deadline = deadline
        self._shutdown.set()
        if self._session is not None:
            self._session.restart(deadline)

    def abort(self) -> None:
        """The PBX stops: end the FastAGI session without further events."""
        if self._session is not None:
            self._session.close()

    async def run(self) -> CallResult:
        template = self._template
        status: str | None = None
        lines: tuple[AgiLine, ...] = ()
        closed = False
        if await self.play(template.pre) and template.agi_start is not None:
            self.emit(template.agi_start)
            await self.play(template.side)
            status, lines, closed = await self._survey()
        if self._shutdown.is_set():
            self._teardown()
        return CallResult(
            linkedid=self.linkedid,
            caller_uniqueid=self.uniqueid(template.caller),
            caller_channel=self.channel(template.caller),
            agi_status=status,
            agi_lines=lines,
            agi_closed_by_service=closed,
        )

    async def _survey(self) -> tuple[str, tuple[AgiLine, ...], bool]:
        template = self._template
        assert template.agi_channel is not None
        self._virtual = self.clock.now()
        self.clock.set(self._virtual, 1.0)
        streams = await connect(
            self._settings.agi_host, self._settings.agi_port, source=self._settings.agi_source
        )
        if streams is None:
            self._status_override = "FAILURE"
            await self._finish([*template.close, *template.tail])
            return "FAILURE", (), False
        hooks = _Hooks(self, template.agi_channel)
        session = AgiSession(
            streams[0],
            streams[1],
            env=self._env(),
            keypad=Keypad(self.plan.survey, intro=self.plan.intro),
            hooks=hooks,
            prompts=self._settings.prompts,
            limit=self._settings.agi_session_limit,
            rng=self._host.rng,
        )
        self._session = session
        if self._shutdown.is_set():
            session.restart(self._deadline)
        outcome = await session.run()
        self._session = None
        reason = outcome.hangup_reason
        status = "SUCCESS" if reason is None else "HANGUP"
        self._status_override = status
        self._virtual = self.clock.now()
        if reason == "restart":
            if outcome.closed_by_service:
                await self._finish(template.restart_after, stop_on_shutdown=False)
            else:
                self._left_open = self.channel(template.agi_channel)
        elif reason == "caller":
            await self._finish(template.hangup_after)
        elif reason == "command":
            agi = template.agi_channel
            ended = [*template.close, *template.tail]
            await self._finish(
                [t for t in ended if not (t.event.name == "Newexten" and t.event.channel == agi)]
            )
        else:
            await self._finish([*template.close, *template.tail])
        return status, tuple(outcome.lines), outcome.closed_by_service

    async def _finish(self, timed: Sequence[TimedEvent], stop_on_shutdown: bool = True) -> None:
        if stop_on_shutdown:
            await self.play(timed)
            return
        for item in timed:
            self._virtual += item.gap(self.plan)
            self.clock.set(self._virtual, 1.0)
            self.emit(item.event)

    def _teardown(self) -> None:
        """Restart before the call ended: every channel still up is hung up (not captured; guess).

        SoftHangupRequest with Cause 4 then Hangup with Cause 0, as fact 46
        shows for the caller's ;1 half; a FastAGI channel whose socket is
        still open is left without Hangup (fact 47).
        """
        linkedid = self.linkedid
        live = [
            c
            for c in self._host.state.channels.values()
            if c.linkedid == linkedid and c.name != self._left_open
        ]
        for channel in live:
            self._publish(
                [
                    ("Event", "SoftHangupRequest"),
                    ("Privilege", "call,all"),
                    *channel.headers(),
                    ("Cause", "4"),
                ]
            )
        for channel in live:
            self._publish(
                [
                    ("Event", "Hangup"),
                    ("Privilege", "call,all"),
                    *channel.headers(),
                    ("Cause", "0"),
                    ("Cause-txt", "Unknown"),
                ]
            )

    def _env(self) -> list[Header]:
        """The captured env block with this call's values (fact 20's key order)."""
        template = self._template
        assert template.agi_channel is not None
        name = self.channel(template.agi_channel)
        live = self._host.state.channel(name)
        snapshot = live.snapshot if live is not None else {}
        number = snapshot.get("CallerIDNum", "")
        caller_name = snapshot.get("CallerIDName", "")
        context, exten, priority = template.location
        overrides = {
            "agi_request": f"agi://{self._settings.agi_host}:{self._settings.agi_port}/nps",
            "agi_channel": name,
            "agi_language": snapshot.get("Language", "en"),
            "agi_type": name.split("/", 1)[0],
            "agi_uniqueid": self.uniqueid(template.agi_channel),
            "agi_callerid": number if number not in ("", "<unknown>") else "unknown",
            "agi_calleridname": caller_name if caller_name not in ("", "<unknown>") else "unknown",
            "agi_context": context,
            "agi_extension": exten,
            "agi_priority": priority,
            "agi_threadid": str(139_700_000_000_000 + self._host.rng.randrange(100_000_000_000)),
        }
        env = [(k, overrides.get(k, v)) for k, v in template.env if not k.startswith("agi_arg_")]
        args = agi_arguments(self.plan, self.linkedid)
        env.extend((f"agi_arg_{n}", arg) for n, arg in enumerate(args, start=1))
        return env

    def agi_channel_state(self) -> ChannelState | None:
        role = self._template.agi_channel
        return None if role is None else self._host.state.channel(self.channel(role))

    def play_borrowed(self, timed: Sequence[TimedEvent]) -> None:
        """Emit a hang-up or restart segment at once (its captured gaps are a few ms)."""
        for item in timed:
            self.emit(item.event)


class _Hooks:
    """Binds a FastAGI session to its call: live AMI events and channel variables."""

    def __init__(self, call: Call, role: str) -> None:
        self._call = call
        self._role = role
        self._duration = "280" if call.channel(role).startswith("PJSIP/") else "250"

    def channel_name(self) -> str:
        return self._call.channel(self._role)

    def exec_start(self, command: str, command_id: int) -> None:
        extra = [("CommandId", str(command_id)), ("Command", command)]
        self._call.live_event("AGIExecStart", "agi,all", self._role, extra)

    def exec_end(self, command: str, command_id: int, code: int, result: str) -> None:
        extra = [
            ("CommandId", str(command_id)),
            ("Command", command),
            ("ResultCode", str(code)),
            ("Result", result),
        ]
        self._call.live_event("AGIExecEnd", "agi,all", self._role, extra)

    def dtmf(self, digit: str) -> None:
        self._call.live_event(
            "DTMFBegin", "dtmf,all", self._role, [("Digit", digit), ("Direction", "Received")]
        )
        self._call.live_event(
            "DTMFEnd",
            "dtmf,all",
            self._role,
            [("Digit", digit), ("DurationMs", self._duration), ("Direction", "Received")],
        )

    def set_variable(self, name: str, value: str) -> None:
        self._call.live_event(
            "VarSet", "dialplan,all", self._role, [("Variable", name), ("Value", value)]
        )

    def get_variable(self, name: str) -> str | None:
        channel = self._call.agi_channel_state()
        return None if channel is None else read_variable(channel, name)

    def full_variable(self, expression: str) -> str:
        channel = self._call.agi_channel_state()
        return "" if channel is None else substitute(channel, expression)

    def caller_hangup(self, idle: bool) -> None:
        template = self._call.template
        self._call.play_borrowed(template.idle_hangup_moment if idle else template.hangup_moment)

    def restart_hangup(self) -> None:
        self._call.play_borrowed(self._call.template.restart_moment)

    def hangup_command(self) -> None:
        self._call.live_event("SoftHangupRequest", "call,all", self._role, [("Cause", "32")])


def agi_arguments(plan: CallPlan, linkedid: str) -> tuple[str, ...]:
    """The AGI() arguments as the dialplan expands them.

    `${CHANNEL(linkedid)}` inside an argument becomes the call's Linkedid, so a
    plan can spell a dialplan line such as
    `AGI(agi://...,${CHANNEL(linkedid)},optin=1)` literally.
    """
    if plan.agi_args is None:
        return (linkedid,)
    return tuple(arg.replace("${CHANNEL(linkedid)}", linkedid) for arg in plan.agi_args)
