"""What the simulated Asterisk knows right now, learnt from the events it emits.

Every event the simulator publishes passes through `PbxState.apply` first,
so the answers to QueueStatus, CoreShowChannels, Status, BridgeList,
BridgeInfo and to AGI `GET VARIABLE` come from the same facts the AMI clients
were told, in the same order. Nothing is tracked on the side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ivr.sim.clock import CallClock

SNAPSHOT_FIELDS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)
STATUS_NOT_INUSE = 1
STATUS_INUSE = 2


def variable_name(name: str) -> str:
    """ast_var_name: `_X` and `__X` (inherited variables) are read back as `X`."""
    return name.lstrip("_") if name.startswith("_") else name


@dataclass
class ChannelState:
    """One live channel: its latest snapshot, dialplan position, bridge and variables."""

    snapshot: dict[str, str]
    clock: CallClock
    created: float
    answered: float | None = None
    forks: list[float] = field(default_factory=list)
    cdrs: int = 0
    application: str = ""
    data: str = ""
    bridge: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.snapshot["Channel"]

    @property
    def uniqueid(self) -> str:
        return self.snapshot["Uniqueid"]

    @property
    def linkedid(self) -> str:
        return self.snapshot["Linkedid"]

    @property
    def technology(self) -> str:
        return self.name.split("/", 1)[0]

    def cdr_span(self, index: int, now: float) -> tuple[float, float]:
        """Start and end of the channel's `index`-th CDR (virtual seconds).

        Asterisk's CDR engine starts a new record for a channel each time a
        party leaves a bridge it is in, and posts them all when the channel
        ends; so record k runs from the k-th such moment to the next one.
        """
        start = self.created if index == 0 else self.forks[min(index, len(self.forks)) - 1]
        end = self.forks[index] if index < len(self.forks) else now
        return start, max(start, end)

    def age(self) -> float:
        return max(0.0, self.clock.now() - self.created)

    def headers(self) -> list[tuple[str, str]]:
        return [(key, self.snapshot.get(key, "")) for key in SNAPSHOT_FIELDS]

    def variable(self, name: str) -> str | None:
        return self.variables.get(variable_name(name))


@dataclass
class BridgeState:
    uniqueid: str
    type: str = "basic"
    technology: str = "simple_bridge"
    creator: str = "<unknown>"
    name: str = "<unknown>"
    video_mode: str = "none"
    channels: list[str] = field(default_factory=list)

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", self.type),
            ("BridgeTechnology", self.technology),
            ("BridgeCreator", self.creator),
            ("BridgeName", self.name),
            ("BridgeNumChannels", str(len(self.channels))),
            ("BridgeVideoSourceMode", self.video_mode),
        ]


@dataclass
class MemberState:
    name: str
    interface: str
    login_time: int
    status: int = STATUS_NOT_INUSE
    in_call: int = 0
    calls_taken: int = 0
    last_call: int = 0


@dataclass
class QueueState:
    """app_queue's counters; holdtime/talktime are its (3*old + new) / 4 averages."""

    name: str
    members: dict[str, MemberState] = field(default_factory=dict)
    waiting: dict[str, tuple[float, CallClock]] = field(default_factory=dict)
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0


class PbxState:
    """Channels, bridges and queues of one simulated Asterisk, since its last (re)start."""

    def __init__(self, login_time: int) -> None:
        self.login_time = login_time
        self.channels: dict[str, ChannelState] = {}
        self.bridges: dict[str, BridgeState] = {}
        self.queues: dict[str, QueueState] = {}

    def reset(self, login_time: int) -> None:
        """A restart: every channel and bridge is gone, queue statistics start again."""
        configured = {
            name: [(m.name, m.interface) for m in queue.members.values()]
            for name, queue in self.queues.items()
        }
        self.login_time = login_time
        self.channels.clear()
        self.bridges.clear()
        self.queues.clear()
        for name, members in configured.items():
            self.add_queue(name, members)

    def add_queue(self, name: str, members: Iterable[tuple[str, str]] = ()) -> QueueState:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = QueueState(name)
        for member_name, interface in members:
            self.member(queue, member_name, interface)
        return queue

    def member(self, queue: QueueState, name: str, interface: str) -> MemberState:
        member = queue.members.get(interface)
        if member is None:
            member = queue.members[interface] = MemberState(name, interface, self.login_time)
        return member

    def channel(self, name: str) -> ChannelState | None:
        return self.channels.get(name)

    def apply(self, event: str, headers: Sequence[tuple[str, str]], clock: CallClock) -> None:
        values: dict[str, str] = {}
        for key, value in headers:
            values.setdefault(key, value)
        if event == "Newchannel":
            now = clock.now()
            snapshot = {key: values.get(key, "") for key in SNAPSHOT_FIELDS}
            self.channels[snapshot["Channel"]] = ChannelState(snapshot, clock, created=now)
        self._refresh(values, "")
        self._refresh(values, "Dest")
        handler = _HANDLERS.get(event)
        if handler is not None:
            handler(self, values, clock)

    def _refresh(self, values: Mapping[str, str], prefix: str) -> None:
        if f"{prefix}ChannelState" not in values:
            return
        channel = self.channels.get(values.get(f"{prefix}Channel", ""))
        if channel is None:
            return
        for key in SNAPSHOT_FIELDS:
            value = values.get(prefix + key)
            if value is not None:
                channel.snapshot[key] = value

    def _newstate(self, values: Mapping[str, str], clock: CallClock) -> None:
        channel = self.channels.get(values.get("Channel", ""))
        if channel and values.get("ChannelState") == "6" and channel.answered is None:
            channel.answered = clock.now()

    def _newexten(self, values: Mapping[str, str], clock: CallClock) -> None:
        channel = self.channels.get(values.get("Channel", ""))
        if channel:
            channel.application = values.get("Application", "")
            channel.data = values.get("AppData", "")

    def _varset(self, values: Mapping[str, str], clock: CallClock) -> None:
        channel = self.channels.get(values.get("Channel", ""))
        if channel is None:
            return
        name = variable_name(values.get("Variable", ""))
        value = values.get("Value", "")
        if value:
            channel.variables[name] = value
        else:
            channel.variables.pop(name, None)

    def _bridge_create(self, values: Mapping[str, str], clock: CallClock) -> None:
        uniqueid = values.get("BridgeUniqueid", "")
        self.bridges[uniqueid] = BridgeState(
            uniqueid,
            values.get("BridgeType", "basic"),
            values.get("BridgeTechnology", "simple_bridge"),
            values.get("BridgeCreator", "<unknown>"),
            values.get("BridgeName", "<unknown>"),
            values.get("BridgeVideoSourceMode", "none"),
        )

    def _bridge_enter(self, values: Mapping[str, str], clock: CallClock) -> None:
        bridge = self.bridges.get(values.get("BridgeUniqueid", ""))
        name = values.get("Channel", "")
        if bridge is not None and name not in bridge.channels:
            bridge.channels.append(name)
        channel = self.channels.get(name)
        if channel is not None and bridge is not None:
            channel.bridge = bridge.uniqueid

    def _bridge_leave(self, values: Mapping[str, str], clock: CallClock) -> None:
        name = values.get("Channel", "")
        bridge = self.bridges.get(values.get("BridgeUniqueid", ""))
        now = clock.now()
        for member in bridge.channels if bridge is not None else ():
            state = self.channels.get(member)
            if state is not None and (not state.forks or state.forks[-1] != now):
                state.forks.append(now)
        if bridge is not None and name in bridge.channels:
            bridge.channels.remove(name)
        channel = self.channels.get(name)
        if channel is not None and bridge is not None and channel.bridge == bridge.uniqueid:
            channel.bridge = ""

    def _bridge_destroy(self, values: Mapping[str, str], clock: CallClock) -> None:
        self.bridges.pop(values.get("BridgeUniqueid", ""), None)

    def _hangup(self, values: Mapping[str, str], clock: CallClock) -> None:
        name = values.get("Channel", "")
        self.channels.pop(name, None)
        for bridge in self.bridges.values():
            if name in bridge.channels:
                bridge.channels.remove(name)
        for queue in self.queues.values():
            queue.waiting.pop(name, None)

    def _cdr(self, values: Mapping[str, str], clock: CallClock) -> None:
        channel = self.channels.get(values.get("Channel", ""))
        if channel is not None:
            channel.cdrs += 1

    def _join(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.add_queue(values.get("Queue", ""))
        queue.waiting[values.get("Channel", "")] = (clock.now(), clock)

    def _leave(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.queues.get(values.get("Queue", ""))
        if queue is not None:
            queue.waiting.pop(values.get("Channel", ""), None)

    def _abandon(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.add_queue(values.get("Queue", ""))
        queue.abandoned += 1

    def _agent_called(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.add_queue(values.get("Queue", ""))
        self.member(queue, values.get("MemberName", ""), values.get("Interface", ""))

    def _agent_connect(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.add_queue(values.get("Queue", ""))
        member = self.member(queue, values.get("MemberName", ""), values.get("Interface", ""))
        member.in_call = 1
        queue.holdtime = (3 * queue.holdtime + _int(values.get("HoldTime"))) // 4

    def _agent_complete(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.add_queue(values.get("Queue", ""))
        member = self.member(queue, values.get("MemberName", ""), values.get("Interface", ""))
        member.in_call = 0
        member.calls_taken += 1
        member.last_call = int(clock.epoch_now())
        queue.completed += 1
        queue.talktime = (3 * queue.talktime + _int(values.get("TalkTime"))) // 4

    def _member_status(self, values: Mapping[str, str], clock: CallClock) -> None:
        queue = self.add_queue(values.get("Queue", ""))
        member = self.member(queue, values.get("MemberName", ""), values.get("Interface", ""))
        member.status = _int(values.get("Status"), STATUS_NOT_INUSE)
        if member.status == STATUS_NOT_INUSE:
            member.in_call = 0


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


_HANDLERS = MappingProxyType(
    {
        "Newstate": PbxState._newstate,
        "Newexten": PbxState._newexten,
        "VarSet": PbxState._varset,
        "BridgeCreate": PbxState._bridge_create,
        "BridgeEnter": PbxState._bridge_enter,
        "BridgeLeave": PbxState._bridge_leave,
        "BridgeDestroy": PbxState._bridge_destroy,
        "Hangup": PbxState._hangup,
        "Cdr": PbxState._cdr,
        "QueueCallerJoin": PbxState._join,
        "QueueCallerLeave": PbxState._leave,
        "QueueCallerAbandon": PbxState._abandon,
        "AgentCalled": PbxState._agent_called,
        "AgentConnect": PbxState._agent_connect,
        "AgentComplete": PbxState._agent_complete,
        "QueueMemberStatus": PbxState._member_status,
    }
)


def read_variable(channel: ChannelState, expression: str) -> str | None:
    """GET VARIABLE: a channel variable, a dialplan function or a builtin; None if unset.

    Functions answer "" rather than None when they have no value, as
    `ast_func_read` succeeds with an empty buffer (`200 result=1 ()`).
    """
    name = expression.strip()
    if name.endswith(")") and "(" in name:
        function, _, argument = name[:-1].partition("(")
        return _function(channel, function.strip().upper(), argument.strip())
    builtin = _builtin(channel, name)
    if builtin is not None:
        return builtin
    return channel.variable(name)


def _builtin(channel: ChannelState, name: str) -> str | None:
    values = {
        "CHANNEL": channel.name,
        "UNIQUEID": channel.uniqueid,
        "CONTEXT": channel.snapshot.get("Context", ""),
        "EXTEN": channel.snapshot.get("Exten", ""),
        "PRIORITY": channel.snapshot.get("Priority", ""),
        "EPOCH": str(int(channel.clock.epoch_now())),
    }
    return values.get(name)


def _caller_field(value: str) -> str:
    return "" if value == "<unknown>" else value


def _function(channel: ChannelState, function: str, argument: str) -> str | None:
    snapshot = channel.snapshot
    key = argument.lower()
    if function == "CHANNEL":
        values = {
            "linkedid": channel.linkedid,
            "uniqueid": channel.uniqueid,
            "language": snapshot.get("Language", "en"),
            "name": channel.name,
            "channeltype": channel.technology,
            "state": snapshot.get("ChannelStateDesc", "").lower(),
            "accountcode": snapshot.get("AccountCode", ""),
            "pjsip,call-id": f"{channel.uniqueid}@127.0.0.1",
        }
        return values.get(key, "")
    if function in ("CALLERID", "CONNECTEDLINE"):
        prefix = "CallerID" if function == "CALLERID" else "ConnectedLine"
        number = _caller_field(snapshot.get(f"{prefix}Num", ""))
        name = _caller_field(snapshot.get(f"{prefix}Name", ""))
        if key in ("num", "number", "ani"):
            return number
        if key == "name":
            return name
        if key == "all":
            return f'"{name}" <{number}>' if name else number
        return ""
    if function == "CDR":
        values = {"linkedid": channel.linkedid, "uniqueid": channel.uniqueid}
        return values.get(key, "")
    return None


def substitute(channel: ChannelState, text: str) -> str:
    """pbx_substitute_variables for `${NAME}` and `${FUNC(args)}`, innermost first."""
    result = text
    for _ in range(32):
        start = result.rfind("${")
        if start < 0:
            break
        end = result.find("}", start)
        if end < 0:
            break
        value = read_variable(channel, result[start + 2 : end]) or ""
        result = result[:start] + value + result[end + 1 :]
    return result
