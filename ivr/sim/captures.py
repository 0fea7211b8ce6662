"""Captures read into tokenized events, and split around their AGI.

A capture is replayed, not re-imagined: each captured event keeps its name,
its header names and their order, and every literal value. Only the values
that identify *this* call are replaced, and they are found once, at load time,
by tokenizing each header value against the strings the capture is known to
contain (Uniqueids, channel names, bridge ids, queue and member names, the
caller id).

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ivr.sim.capture_catalogue import CAPTURES, CaptureInfo
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
    Token,
    Value,
)
from ivr.sim.transcript import AmiMessage, read_agi, read_ami

#: Events of the capture driver or of the AMI session, not of the call.
NOT_CALL_EVENTS = frozenset(
    {"FullyBooted", "SuccessfulAuth", "OriginateResponse", "RequestNotAllowed", "Shutdown"}
)
#: Events the simulator generates live from the FastAGI conversation instead.
SURVEY_EVENT_NAMES = frozenset(
    {"AGIExecStart", "AGIExecEnd", "DTMFBegin", "DTMFEnd", "RTCPSent", "RTCPReceived"}
)
SURVEY_CEL_EVENTS = frozenset({"STREAM_BEGIN", "STREAM_END", "DTMF"})
_WINDOW_EPSILON = 0.01
_AGENT_NAMES = MappingProxyType(
    {"agent1": "Agent One", "agent2": "Agent Two", "agent-slow": "Slow Agent"}
)
_CHANNEL = re.compile(
    r"(?:Local/[^\s;,\"@/]+@[^\s;,\"]+?|PJSIP/[^\s;,\"/]+?)-[0-9a-f]{8}(?:;[12])?(?![\w])"
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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
