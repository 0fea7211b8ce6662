"""Call templates cut from the Asterisk 22 captures, with every identifier made a hole.

A capture is replayed, not re-imagined: each captured event keeps its name,
its header names and their order, and every literal value. Only the values
that identify *this* call are replaced, and they are found once, at load time,
by tokenizing each header value against the strings the capture is known to
contain (Uniqueids, channel names, bridge ids, queue and member names, the
caller id). A replay then only joins literals with per-call substitutions.

Channels are known by role: `caller;1` (the customer's phone half, whose
Uniqueid is the Linkedid), `caller;2` (the half in the queue that runs the
AGI), `caller` (a single PJSIP channel), `agent0;1`/`agent0;2` (first member),
`agent1;…` (second member), `consult;…` (the attended transfer's target).

A capture is split around its AGI: `pre` (up to the `Newexten` that starts
AGI()), the AGI window (whose survey events - AGIExec*, DTMF*, CEL streams,
SET VARIABLE VarSets - are dropped because the simulator makes live ones),
and `tail` (from `VarSet AGISTATUS` on). Window events that are not the
survey's are kept by when they happened: with the AGI start (`side`), with
the socket close (`close`), or in between (`moment`: a hang-up or a restart).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import NamedTuple

from ivr.sim.plan import CallPlan, Flow
from ivr.sim.transcript import AmiMessage, read_agi, read_ami

UID = "uid"
CHAN = "chan"
STEM = "stem"
BRIDGE = "bridge"
QUEUE = "queue"
AGENT_NAME = "agent_name"
AGENT_IFACE = "agent_iface"
AGENT_PEER = "agent_peer"
AGENT_EXTEN = "agent_exten"
CALLER_NUM = "caller_num"
CALLER_NAME = "caller_name"

FIRST_QUEUE = "first"
TRANSFER_QUEUE = "transfer"

#: Events of the capture driver or of the AMI session, not of the call.
NOT_CALL_EVENTS = frozenset(
    {"FullyBooted", "SuccessfulAuth", "OriginateResponse", "RequestNotAllowed", "Shutdown"}
)
#: Events the simulator generates live from the FastAGI conversation instead.
SURVEY_EVENT_NAMES = frozenset(
    {"AGIExecStart", "AGIExecEnd", "DTMFBegin", "DTMFEnd", "RTCPSent", "RTCPReceived"}
)
SURVEY_CEL_EVENTS = frozenset({"STREAM_BEGIN", "STREAM_END", "DTMF"})
#: Channel variables that exist only with setinterfacevar/setqueuevar/setqueueentryvar.
SETVAR_VARIABLES = frozenset(
    {
        "MEMBERINTERFACE",
        "MEMBERNAME",
        "MEMBERCALLS",
        "MEMBERLASTCALL",
        "MEMBERPENALTY",
        "MEMBERDYNAMIC",
        "MEMBERREALTIME",
        "QEHOLDTIME",
        "QEORIGINALPOS",
        "QUEUENAME",
        "QUEUEMAX",
        "QUEUESTRATEGY",
        "QUEUECALLS",
        "QUEUEHOLDTIME",
        "QUEUETALKTIME",
        "QUEUECOMPLETED",
        "QUEUEABANDONED",
        "QUEUESRVLEVEL",
        "QUEUESRVLEVELPERF",
    }
)
ANCHORS = frozenset({"QueueCallerJoin", "AgentConnect", "AgentComplete", "QueueCallerAbandon"})
_WINDOW_EPSILON = 0.01
_AGENT_NAMES = MappingProxyType(
    {"agent1": "Agent One", "agent2": "Agent Two", "agent-slow": "Slow Agent"}
)
_CHANNEL = re.compile(
    r"(?:Local/[^\s;,\"@/]+@[^\s;,\"]+?|PJSIP/[^\s;,\"/]+?)-[0-9a-f]{8}(?:;[12])?(?![\w])"
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Token(NamedTuple):
    """A hole in a captured value: what kind of identifier, and whose."""

    kind: str
    key: str


Value = tuple[str | Token, ...]


@dataclass(frozen=True, slots=True)
class TemplateEvent:
    """One captured event with its identifying values turned into tokens.

    `channel` is the role in the `Channel` header; `refs` every role that is
    the whole value of some header (used to drop the events of a channel that
    a variant does not have, e.g. the ;1 half for a PJSIP caller).
    `borrowed` marks events taken from another capture than the call's own:
    their channel snapshot is refreshed from the live state when replayed.

    `keys` and `literals` are derived once, because a replay renders every
    event of every call: `keys` are the header names in order (what decides
    how a value is recomputed), `literals` each value already joined when it
    has no hole in it (None where it has one).
    """

    name: str
    headers: tuple[tuple[str, Value], ...]
    at: float
    channel: str | None
    refs: frozenset[str]
    borrowed: bool = False
    keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    literals: tuple[str | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(key for key, _ in self.headers))
        object.__setattr__(self, "literals", tuple(_literal(parts) for _, parts in self.headers))

    def text(self, name: str) -> str:
        """A header with its tokens shown as `<kind:key>`: for classifying, not for the wire."""
        for key, value in self.headers:
            if key == name:
                return "".join(p if isinstance(p, str) else f"<{p.kind}:{p.key}>" for p in value)
        return ""

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.headers)


def _literal(parts: Value) -> str | None:
    """The value itself when it has no hole, else None."""
    texts = [part for part in parts if isinstance(part, str)]
    return "".join(texts) if len(texts) == len(parts) else None


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event and the virtual time since the previous one.

    The gap is `fixed + hold * plan.hold_seconds + talk * plan.talk_seconds`:
    inside a hold (QueueCallerJoin → AgentConnect/QueueCallerAbandon) or talk
    (AgentConnect → AgentComplete) stretch the captured gaps are rescaled so
    the stretch lasts exactly the plan's seconds; elsewhere they are kept.
    """

    event: TemplateEvent
    fixed: float
    hold: float = 0.0
    talk: float = 0.0

    def gap(self, plan: CallPlan) -> float:
        return self.fixed + self.hold * plan.hold_seconds + self.talk * plan.talk_seconds


@dataclass(frozen=True)
class CaptureInfo:
    """What a capture's literal strings mean (read off the capture and its configs)."""

    queues: Mapping[str, str]
    agents: Mapping[str, int]
    caller_number: str = "+15550001111"
    caller_name: str = "Customer"
    agi: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", MappingProxyType(dict(self.queues)))
        object.__setattr__(self, "agents", MappingProxyType(dict(self.agents)))


CAPTURES: Mapping[str, CaptureInfo] = MappingProxyType(
    {
        "ami-queue-call-survey.txt": CaptureInfo(
            {"support": FIRST_QUEUE}, {"agent1": 0}, agi="fastagi-session-complete.txt"
        ),
        "ami-sip-call-survey.txt": CaptureInfo(
            {"support": FIRST_QUEUE},
            {"agent1": 0},
            caller_number="+15550002222",
            agi="fastagi-session-sip.txt",
        ),
        "ami-caller-abandons-queue.txt": CaptureInfo({"slow": FIRST_QUEUE}, {"agent-slow": 0}),
        "ami-caller-hangs-up-while-bridged.txt": CaptureInfo(
            {"support": FIRST_QUEUE},
            {"agent1": 0},
            agi="fastagi-session-agent-leg-via-F-option.txt",
        ),
        "ami-blind-transfer.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-blind-transfer.txt",
        ),
        "ami-blind-transfer-setvars.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales-vars": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-blind-transfer-setvars.txt",
        ),
        "ami-attended-transfer.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-attended-transfer.txt",
        ),
        "ami-attended-transfer-direct.txt": CaptureInfo(
            {"support": FIRST_QUEUE, "sales": TRANSFER_QUEUE},
            {"agent1": 0, "agent2": 1},
            agi="fastagi-session-attended-transfer-direct.txt",
        ),
        "ami-caller-abandons-survey.txt": CaptureInfo({"support": FIRST_QUEUE}, {"agent1": 0}),
        "ami-caller-abandons-survey-idle.txt": CaptureInfo({"support": FIRST_QUEUE}, {"agent1": 0}),
        "ami-asterisk-restart-agi-closes.txt": CaptureInfo({"support": FIRST_QUEUE}, {"agent1": 0}),
    }
)
HANGUP_DURING_COMMAND = "ami-caller-abandons-survey.txt"
HANGUP_WHILE_IDLE = "ami-caller-abandons-survey-idle.txt"
RESTART = "ami-asterisk-restart-agi-closes.txt"
SIP_ENV = "fastagi-session-sip.txt"


def capture_for(plan: CallPlan) -> str:
    """The capture a plan replays (pjsip variants of other flows derive from the Local ones)."""
    if plan.flow is Flow.ANSWERED:
        return (
            "ami-sip-call-survey.txt"
            if plan.caller_kind == "pjsip"
            else ("ami-queue-call-survey.txt")
        )
    if plan.flow is Flow.BLIND_TRANSFER:
        return "ami-blind-transfer-setvars.txt" if plan.set_vars else "ami-blind-transfer.txt"
    return {
        Flow.ABANDON_IN_QUEUE: "ami-caller-abandons-queue.txt",
        Flow.CALLER_HANGS_UP_BRIDGED: "ami-caller-hangs-up-while-bridged.txt",
        Flow.ATTENDED_TRANSFER: "ami-attended-transfer.txt",
        Flow.ATTENDED_TRANSFER_DIRECT: "ami-attended-transfer-direct.txt",
    }[plan.flow]


def is_call_event(name: str) -> bool:
    return name not in NOT_CALL_EVENTS


def is_survey_event(name: str, headers: Mapping[str, str], agi_channel: str) -> bool:
    """Whether an event inside the AGI window belongs to the survey (live in the simulator).

    Takes plain header values so the tests can apply the same rule to both a
    capture and the simulator's output.
    """
    if name in SURVEY_EVENT_NAMES:
        return True
    if headers.get("Channel") != agi_channel:
        return False
    if name == "CEL":
        return headers.get("EventName") in SURVEY_CEL_EVENTS
    if name == "VarSet":
        return headers.get("Variable") != "AGISTATUS"
    return name == "SoftHangupRequest" and headers.get("Cause") == "32"


@dataclass(frozen=True)
class Capture:
    """A capture's call events, tokenized, with where its AGI starts and ends."""

    name: str
    info: CaptureInfo
    events: tuple[TemplateEvent, ...]
    stems: Mapping[str, str]
    agi_index: int | None
    status_index: int | None
    env: tuple[tuple[str, str], ...] = ()

    @property
    def agi_channel(self) -> str | None:
        return None if self.agi_index is None else self.events[self.agi_index].channel

    def window(self) -> tuple[TemplateEvent, ...]:
        if self.agi_index is None:
            return ()
        end = self.status_index if self.status_index is not None else len(self.events)
        return self.events[self.agi_index + 1 : end]

    def tail(self) -> tuple[TemplateEvent, ...]:
        if self.status_index is None:
            return ()
        return self.events[self.status_index :]

    def split_window(self) -> WindowParts:
        """The AGI window's non-survey events grouped by when they happened."""
        agi_channel = self.agi_channel
        assert self.agi_index is not None
        assert agi_channel is not None
        start = self.events[self.agi_index].at
        end = self.events[self.status_index].at if self.status_index is not None else 1e18
        side: list[TemplateEvent] = []
        moment: list[TemplateEvent] = []
        close: list[TemplateEvent] = []
        for event in self.window():
            if _is_survey(event, agi_channel):
                continue
            if event.at <= start + _WINDOW_EPSILON:
                side.append(event)
            elif event.at >= end - _WINDOW_EPSILON:
                close.append(event)
            else:
                moment.append(event)
        return WindowParts(tuple(side), tuple(moment), tuple(close))


@dataclass(frozen=True)
class WindowParts:
    side: tuple[TemplateEvent, ...]
    moment: tuple[TemplateEvent, ...]
    close: tuple[TemplateEvent, ...]


def _is_survey(event: TemplateEvent, agi_channel: str) -> bool:
    headers = {"Channel": "" if event.channel is None else event.channel}
    for name in ("EventName", "Variable", "Cause"):
        headers[name] = event.text(name)
    if event.channel is None:
        headers.pop("Channel")
    return is_survey_event(event.name, headers, agi_channel)


def parse_capture(name: str) -> Capture:
    """Tokenize one capture's call events (connection #1 only)."""
    info = CAPTURES[name]
    messages = [
        m
        for m in read_ami(name)
        if not m.sent and m.kind == "Event" and m.connection == 1 and is_call_event(m.event)
    ]
    roles, stems = _channel_roles(messages, info)
    lookup = _token_lookup(messages, info, roles, stems)
    pattern = _token_pattern(lookup)
    events: list[TemplateEvent] = []
    for message in messages:
        headers = tuple(
            (key, _tokenize(value, pattern, lookup)) for key, value in message.headers[1:]
        )
        channel_value = message.get("Channel")
        channel = roles.get(channel_value)
        refs = frozenset(roles[value] for _, value in message.headers if value in roles)
        events.append(TemplateEvent(message.event, headers, message.at, channel, refs))
    agi_index = next(
        (
            i
            for i, e in enumerate(events)
            if e.name == "Newexten" and e.text("Application") == "AGI"
        ),
        None,
    )
    status_index = next(
        (
            i
            for i, e in enumerate(events)
            if e.name == "VarSet" and e.text("Variable") == "AGISTATUS"
        ),
        None,
    )
    env = read_agi(info.agi).environment if info.agi else ()
    return Capture(name, info, tuple(events), stems, agi_index, status_index, env)


def _stem_role(stem: str, info: CaptureInfo) -> str:
    if stem.startswith("PJSIP/"):
        return "caller"
    exten, _, context = stem[len("Local/") :].partition("@")
    if context in ("callers", "transfer-callers"):
        return "caller"
    if context == "agents":
        return f"agent{info.agents[exten]}"
    if context == "transfer-targets":
        return "consult"
    raise ValueError(f"unknown channel stem {stem!r}")


def _channel_roles(
    messages: Sequence[AmiMessage], info: CaptureInfo
) -> tuple[dict[str, str], dict[str, str]]:
    """Captured channel name (with and without `;N`) → role, and base role → captured stem."""
    roles: dict[str, str] = {}
    stems: dict[str, str] = {}
    for message in messages:
        for _, value in message.headers:
            for match in _CHANNEL.finditer(value):
                name = match.group(0)
                base, _, half = name.partition(";")
                stem = base[:-9]
                base_role = _stem_role(stem, info)
                stems.setdefault(base_role, stem)
                roles[base] = base_role
                if half:
                    roles[name] = f"{base_role};{half}"
    return roles, stems


def _token_lookup(
    messages: Sequence[AmiMessage],
    info: CaptureInfo,
    roles: Mapping[str, str],
    stems: Mapping[str, str],
) -> dict[str, Token]:
    lookup: dict[str, Token] = {}
    for message in messages:
        if message.event == "Newchannel":
            lookup[message.get("Uniqueid")] = Token(UID, roles[message.get("Channel")])
        for _, value in message.headers:
            for match in _UUID.finditer(value):
                lookup[match.group(0)] = Token(BRIDGE, match.group(0))
    for name, role in roles.items():
        lookup[name] = Token(CHAN, role)
    for role, stem in stems.items():
        lookup[stem] = Token(STEM, role)
    for queue, role in info.queues.items():
        lookup[queue] = Token(QUEUE, role)
    for exten, index in info.agents.items():
        key = str(index)
        lookup[_AGENT_NAMES[exten]] = Token(AGENT_NAME, key)
        lookup[f"Local/{exten}@agents/n"] = Token(AGENT_IFACE, key)
        lookup[f"{exten}@agents/n"] = Token(AGENT_PEER, key)
        lookup[exten] = Token(AGENT_EXTEN, key)
    lookup[info.caller_number] = Token(CALLER_NUM, "")
    lookup[info.caller_name] = Token(CALLER_NAME, "")
    return lookup


def _token_pattern(lookup: Mapping[str, Token]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(text) for text in sorted(lookup, key=len, reverse=True))
    return re.compile(rf"(?<![\w.+-])({alternatives})(?![\w-])")


def _tokenize(value: str, pattern: re.Pattern[str], lookup: Mapping[str, Token]) -> Value:
    if value.startswith("agi://"):
        return (value,)
    parts: list[str | Token] = []
    for index, piece in enumerate(pattern.split(value)):
        if index % 2:
            parts.append(lookup[piece])
        elif piece:
            parts.append(piece)
    return tuple(parts)


def remap(event: TemplateEvent, roles: Mapping[str, str], borrowed: bool = False) -> TemplateEvent:
    """The same event with channel roles renamed (tokens, `channel` and `refs`)."""

    def role(name: str) -> str:
        return roles.get(name, name)

    def part(piece: str | Token) -> str | Token:
        if isinstance(piece, Token) and piece.kind in (UID, CHAN, STEM):
            return Token(piece.kind, role(piece.key))
        return piece

    headers = tuple((key, tuple(part(p) for p in value)) for key, value in event.headers)
    channel = None if event.channel is None else role(event.channel)
    refs = frozenset(role(r) for r in event.refs)
    return TemplateEvent(event.name, headers, event.at, channel, refs, borrowed or event.borrowed)


def with_literals(event: TemplateEvent, values: Mapping[str, str]) -> TemplateEvent:
    """The same event with some headers set to literal values."""
    headers = tuple(
        (key, (values[key],) if key in values else value) for key, value in event.headers
    )
    return replace(event, headers=headers)


@dataclass(frozen=True)
class FlowTemplate:
    """Everything one plan's call replays, already adapted to the plan's variant.

    Role names here are the call's own: `agi_channel` runs the AGI, `phone`
    is its other half (None for a single PJSIP channel), `caller` is the
    channel in the queue, `first` the channel whose Uniqueid is the Linkedid.
    The hang-up and restart segments come from other captures (`borrowed`).
    """

    capture: str
    pre: tuple[TimedEvent, ...]
    agi_start: TemplateEvent | None
    side: tuple[TimedEvent, ...]
    close: tuple[TimedEvent, ...]
    tail: tuple[TimedEvent, ...]
    stems: Mapping[str, str]
    caller: str
    first: str
    agi_channel: str | None
    phone: str | None
    env: tuple[tuple[str, str], ...]
    location: tuple[str, str, str]
    local_agents: tuple[bool, ...]
    hangup_moment: tuple[TimedEvent, ...] = ()
    idle_hangup_moment: tuple[TimedEvent, ...] = ()
    hangup_after: tuple[TimedEvent, ...] = ()
    restart_moment: tuple[TimedEvent, ...] = ()
    restart_after: tuple[TimedEvent, ...] = ()


def _timed(events: Iterable[TemplateEvent]) -> tuple[TimedEvent, ...]:
    """Captured gaps kept as they were (outside hold and talk stretches)."""
    timed: list[TimedEvent] = []
    previous: float | None = None
    for event in events:
        timed.append(TimedEvent(event, 0.0 if previous is None else max(0.0, event.at - previous)))
        previous = event.at
    return tuple(timed)


def _pre_timed(events: Sequence[TemplateEvent]) -> list[tuple[float, float, float]]:
    """Cumulative (fixed, hold, talk) virtual time of each pre-AGI event."""
    anchors = [i for i, e in enumerate(events) if e.name in ANCHORS]
    kinds: dict[int, tuple[str, int, int]] = {}
    for a, b in itertools.pairwise(anchors):
        first, last = events[a].name, events[b].name
        kind = ""
        if first == "QueueCallerJoin" and last in ("AgentConnect", "QueueCallerAbandon"):
            kind = "hold"
        elif first == "AgentConnect" and last == "AgentComplete":
            kind = "talk"
        if kind:
            for j in range(a + 1, b + 1):
                kinds[j] = (kind, a, b)
    totals: list[tuple[float, float, float]] = []
    fixed = hold = talk = 0.0
    for j, event in enumerate(events):
        if j:
            gap = max(0.0, event.at - events[j - 1].at)
            if j in kinds:
                kind, a, b = kinds[j]
                span = events[b].at - events[a].at
                share = gap / span if span > 0 else (1.0 if j == b else 0.0)
                if kind == "hold":
                    hold += share
                else:
                    talk += share
            else:
                fixed += gap
        totals.append((fixed, hold, talk))
    return totals


def _keep_timed(
    events: Sequence[TemplateEvent],
    totals: Sequence[tuple[float, float, float]],
    keep: Callable[[TemplateEvent], bool],
) -> tuple[TimedEvent, ...]:
    timed: list[TimedEvent] = []
    previous = (0.0, 0.0, 0.0)
    for event, total in zip(events, totals, strict=True):
        if not keep(event):
            continue
        if timed:
            timed.append(
                TimedEvent(
                    event,
                    total[0] - previous[0],
                    total[1] - previous[1],
                    total[2] - previous[2],
                )
            )
        else:
            timed.append(TimedEvent(event, 0.0))
        previous = total
    return tuple(timed)


class TemplateLibrary:
    """Parses captures on first use and caches per-variant flow templates.

    One per simulated PBX (or shared between several): parsing a capture
    takes a few tens of milliseconds, a flow variant a little more.
    """

    def __init__(self) -> None:
        self._captures: dict[str, Capture] = {}
        self._flows: dict[tuple[object, ...], FlowTemplate] = {}

    def capture(self, name: str) -> Capture:
        if name not in self._captures:
            self._captures[name] = parse_capture(name)
        return self._captures[name]

    def flow(self, plan: CallPlan) -> FlowTemplate:
        local_agents = tuple(agent.is_local for agent in plan.agents[:2])
        key = (
            capture_for(plan),
            plan.caller_kind,
            plan.set_vars,
            plan.agent_leg_survey,
            local_agents,
        )
        if key not in self._flows:
            self._flows[key] = self._build(plan, local_agents)
        return self._flows[key]

    def _build(self, plan: CallPlan, local_agents: tuple[bool, ...]) -> FlowTemplate:
        capture = self.capture(capture_for(plan))
        derived_pjsip = plan.caller_kind == "pjsip" and capture.name != "ami-sip-call-survey.txt"
        roles: dict[str, str] = {}
        dropped: set[str] = set()
        stems = dict(capture.stems)
        if derived_pjsip:
            roles.update({"caller;1": "caller", "caller;2": "caller"})
            dropped.add("caller;1")
            stems["caller"] = "PJSIP/sipp"
        for index, is_local in enumerate(local_agents):
            if not is_local:
                roles.update(
                    {f"agent{index};1": f"agent{index}", f"agent{index};2": f"agent{index}"}
                )
                dropped.add(f"agent{index};2")
        filter_setvars = not plan.set_vars and plan.flow is not Flow.BLIND_TRANSFER

        def keep(event: TemplateEvent) -> bool:
            if event.channel in dropped or event.refs & dropped:
                return False
            return not (
                filter_setvars
                and event.name == "VarSet"
                and event.text("Variable") in SETVAR_VARIABLES
            )

        def adapt(events: Iterable[TemplateEvent]) -> list[TemplateEvent]:
            return [remap(e, roles) for e in events if keep(e)]

        events = capture.events
        agi_index = capture.agi_index
        end = agi_index if agi_index is not None else len(events)
        pre_events = events[:end]
        totals = _pre_timed(pre_events)
        pre = tuple(
            replace(t, event=remap(t.event, roles)) for t in _keep_timed(pre_events, totals, keep)
        )
        caller = "caller" if derived_pjsip or "caller;2" not in _all_roles(capture) else "caller;2"
        first = "caller" if caller == "caller" else "caller;1"
        env = self.capture_env(capture, derived_pjsip)
        base = FlowTemplate(
            capture=capture.name,
            pre=pre,
            agi_start=None,
            side=(),
            close=(),
            tail=(),
            stems=stems,
            caller=caller,
            first=first,
            agi_channel=None,
            phone=None,
            env=env,
            location=("", "", ""),
            local_agents=local_agents,
        )
        if agi_index is None:
            return base
        parts = capture.split_window()
        side = adapt(parts.side)
        close = adapt(parts.close)
        tail = adapt(capture.tail())
        agi_start = remap(events[agi_index], roles)
        agi_channel = agi_start.channel
        assert agi_channel is not None
        if plan.flow is Flow.CALLER_HANGS_UP_BRIDGED and not plan.agent_leg_survey:
            return self._without_agent_leg(base, agi_channel, side, close, tail)
        phone = _phone_of(agi_channel, dropped)
        location = (
            agi_start.text("Context"),
            agi_start.text("Exten"),
            agi_start.text("Priority"),
        )
        aliases = {"caller;2": agi_channel, "caller;1": phone or agi_channel}
        borrowed_drop = {"caller;1"} if phone is None else set()
        agi_cdrs = [e for e in [*close, *tail] if e.name == "Cdr" and e.channel == agi_channel]
        return replace(
            base,
            agi_start=agi_start,
            side=_timed(side),
            close=_timed(close),
            tail=_timed(tail),
            agi_channel=agi_channel,
            phone=phone,
            location=location,
            hangup_moment=self._borrow(
                HANGUP_DURING_COMMAND, aliases=aliases, dropped=borrowed_drop, part="moment"
            ),
            idle_hangup_moment=self._borrow(
                HANGUP_WHILE_IDLE, aliases=aliases, dropped=borrowed_drop, part="moment"
            ),
            hangup_after=self._borrow(
                HANGUP_DURING_COMMAND,
                aliases=aliases,
                dropped=borrowed_drop,
                part="tail",
                agi_channel=agi_channel,
                cdrs=agi_cdrs,
            ),
            restart_moment=self._borrow(
                RESTART, aliases=aliases, dropped=borrowed_drop, part="moment"
            ),
            restart_after=self._borrow(
                RESTART,
                aliases=aliases,
                dropped=borrowed_drop,
                part="tail",
                agi_channel=agi_channel,
                cdrs=agi_cdrs,
            ),
        )

    def capture_env(self, capture: Capture, derived_pjsip: bool) -> tuple[tuple[str, str], ...]:
        if derived_pjsip and capture.env:
            return tuple(read_agi(SIP_ENV).environment)
        return capture.env

    def _borrow(
        self,
        name: str,
        *,
        aliases: Mapping[str, str],
        dropped: set[str],
        part: str,
        agi_channel: str | None = None,
        cdrs: Sequence[TemplateEvent] = (),
    ) -> tuple[TimedEvent, ...]:
        """A segment of another capture, re-cast onto this call's AGI channel and phone."""
        source = self.capture(name)
        events = source.split_window().moment if part == "moment" else source.tail()
        kept = [remap(e, aliases, borrowed=True) for e in events if e.channel not in dropped]
        if agi_channel is not None:
            replaced: list[TemplateEvent] = []
            inserted = False
            for event in kept:
                if event.name == "Cdr" and event.channel == agi_channel:
                    if not inserted:
                        replaced.extend(cdrs)
                        inserted = True
                    continue
                replaced.append(event)
            kept = replaced
        return _timed(kept)

    def _without_agent_leg(
        self,
        base: FlowTemplate,
        agi_channel: str,
        side: Sequence[TemplateEvent],
        close: Sequence[TemplateEvent],
        tail: Sequence[TemplateEvent],
    ) -> FlowTemplate:
        """Queue option F left out: the member's leg hangs up instead of entering the survey.

        Not captured. Built from the F() capture by dropping the member leg's
        survey-context Newexten and AGISTATUS, and putting that leg back in
        its queue context (agents,s,1) for the teardown events.
        """

        def survey_step(event: TemplateEvent) -> bool:
            return (
                event.channel == agi_channel
                and event.name in ("Newexten", "VarSet")
                and (event.text("Context") == "survey" or event.text("Variable") == "AGISTATUS")
            )

        def home(event: TemplateEvent) -> TemplateEvent:
            if event.channel == agi_channel and event.text("Context") == "survey":
                values = {"Context": "agents", "Exten": "s"}
                if event.has("Priority"):
                    values["Priority"] = "1"
                return with_literals(event, values)
            return event

        pre = tuple(t for t in base.pre if not survey_step(t.event))
        rest = [home(e) for e in [*side, *close, *tail] if not survey_step(e)]
        timed = list(_timed(rest))
        if timed:
            timed[0] = replace(timed[0], fixed=0.0)
        close_start = len(side)
        if 0 < close_start < len(timed):
            timed[close_start] = replace(timed[close_start], fixed=0.0)
        return replace(base, pre=pre + tuple(timed))


def _all_roles(capture: Capture) -> set[str]:
    roles: set[str] = set()
    for event in capture.events:
        roles |= event.refs
    return roles


def _phone_of(agi_channel: str, dropped: set[str]) -> str | None:
    base, _, half = agi_channel.partition(";")
    if not half:
        return None
    other = f"{base};{'2' if half == '1' else '1'}"
    return None if other in dropped else other
