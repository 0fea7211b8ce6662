"""Pure call tracker: AMI events in, one `CallRecord` per queue call out.

The survey credits "the agent who last spoke with the caller", and the FastAGI
side can only name the call by its Linkedid (`${CHANNEL(linkedid)}`, fact 38).
This module turns the AMI event stream of one PBX into that answer. It does no
IO and reads no clock: every time comes from `AmiEvent.received_at` or from the
`now` a caller passes, so the whole thing is tested by replaying the lab
captures of Asterisk 22 (the "facts" cited below are numbered in
`docs/asterisk-facts.md`).

Rules, and why:

* Key: the Linkedid. All channels of a call share it, transfers included
  (facts 6, 38); a bridge copies the oldest Linkedid onto its channels, so when
  a known channel shows up under another Linkedid the two calls are merged and
  the old key stays an alias of the new one.
* A call ends when every channel seen for it has had its `Hangup`. Channels are
  learned from any event naming them (own `Uniqueid`, or the `Dest*` channel of
  DialBegin/AgentCalled/AgentConnect, which is alive at that moment) and from
  resync list events. For Local callers the `;2` half hangs up only after the
  AGI socket closes (facts 23, 24), so the record stays live during the survey.
* Only calls that involved a queue (a Queue*/Agent* event, or a resync entry
  showing the Queue application) are reported. Other Linkedids keep nothing but
  their channel set and are forgotten as soon as they end. Any live call silent
  for `stale_seconds` (its Hangups were lost) is dropped by `evict()`;
  `expire_stale()` ends and returns such queue calls first, as partial.
* The caller is the channel of the call's first queue event. Later queue events
  on another channel of the same Linkedid are a consultation call (attended
  transfer through a queue, fact 34): they never replace the caller.
* Agent chain: one leg per `AgentConnect`, in connection order. A leg reached
  through a consultation channel is held back until it faces the caller (its
  channel, or the Local partner of it, shares the caller's bridge: the
  BridgeMerge of fact 35), or the transfer succeeds (`AttendedTransfer`
  Result Success, or an `AgentComplete` with Reason transfer). A consultation
  that is cancelled never credits the consulted agent.
* `AgentComplete` fills its leg's talk time and who ended it. It is matched by
  `DestUniqueid`, else by queue + caller channel + member, because it can come
  with no `Dest*` header at all (fact 37). `AgentRingNoAnswer` is queue
  evidence only: its RingTime is in milliseconds and that agent never spoke.
* Direct attended transfer (fact 37): no Agent* event names the target. After a
  successful transfer, a channel that was the destination of a Dial in this
  call (and not dialled by a queue, not a transferer, transfer target or caller
  half) and that faces the caller is appended as a leg with `queue=None`. Its
  name is the queue member name known for its interface (from Agent*,
  QueueMemberStatus or QueueMember events), else the Dial's `DestCallerIDName`,
  else the interface (`Local/agent2@agents/n`, built from the channel technology
  and the `DialString`). `ConnectedLineName` is never used: on that channel it
  is the customer's name. It connects when it first faces the caller: at the
  AttendedTransfer, through the Local pair whose `;1` joined the caller's
  bridge, not at the later BridgeEnter that LocalOptimization causes. Its talk
  time is measured with `received_at` from then until it leaves the caller's
  bridge or hangs up, and it was ended by the agent if the caller was still in
  the bridge at that moment.
* Call totals: `queue` and `hold_seconds` come from the last leg that a queue
  connected (after an attended transfer through a queue that is the consulting
  channel's wait, during which the caller was on hold; a direct leg has neither,
  so the previous queue leg's values stay). With no agent leg, `queue` is the
  last queue the caller joined and an abandoned call's hold is the
  `QueueCallerAbandon` HoldTime. `talk_seconds` is the sum of the legs' talk as
  reported: after an attended transfer through a queue the consultation is in
  both legs (fact 35), so it is agent time, not caller time. `ended_by` is the
  last leg's. `transferred` is set by BlindTransfer/AttendedTransfer (Result
  Success) and by an AgentComplete with Reason transfer.
* Resync after a reconnect (facts 40-43): QueueEntry, CoreShowChannel, Status
  and BridgeInfoChannel items go through the same `feed()`. QueueEntry has no
  Linkedid (fact 41): it is mapped through a known Uniqueid, and otherwise kept
  under its Uniqueid as a provisional key (that is the Linkedid of a SIP caller,
  the usual case; fact 6) until any event carrying that Uniqueid and a Linkedid
  moves it to its real key. A bridged agent is found from the caller's bridge
  (`BridgeId` of CoreShowChannel/Status, the group of BridgeInfoChannel items of
  one BridgeInfo) and named from the queue member list; it connected "when the
  resync showed it", and a call first seen in a resync started at the listed
  age (Duration, Seconds, Wait) before the listing. A record that a resync
  created or completed is `partial`, as is a queue call first seen after its
  `QueueCallerJoin`, and a queue call that was live across an AMI reconnect
  (AMI never replays what was missed). A complete CoreShowChannels list ends, as
  partial, every call not listed and not heard of since the last FullyBooted:
  its Hangups were lost with the connection. It ends at the listing's time
  (the real end lies between the last event seen and then), and an agent leg
  still open is ended by `unknown`, as after a restart or a stale expiry.
* Asterisk restart: `Shutdown`, and a `FullyBooted` whose Uptime says Asterisk
  booted after the last event this tracker saw (fact 49), end every live call
  (no Hangup will ever come, fact 47). `asterisk_restarted()` does the same on
  demand.
* Bad input never raises: a missing or non-numeric field is ignored (None), an
  unknown event only teaches the channels it names.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

from ivr.core.domain import AgentLeg, AmiEvent, CallRecord, HangupSide

__all__ = ["DEFAULT_RESTART_UPTIME", "CallTracker", "is_restart"]

# Seconds of Uptime under which a FullyBooted is taken as a fresh start. After
# `core restart now` the reconnect saw Uptime 1 (fact 49); a minute leaves room
# for a slower boot or reconnect without mistaking a long-running Asterisk.
DEFAULT_RESTART_UPTIME = 60

# Bounds on bookkeeping that does not belong to one call.
_MAX_MEMBERS = 4096
_MAX_QUEUES_PER_MEMBER = 64
_MAX_OPEN_LISTS = 16

_QUEUE_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentConnect",
        "AgentComplete",
        "AgentRingNoAnswer",
        "AgentDump",
    }
)
# Events whose Dest* channel is certainly alive when they are sent, so it can be
# learned without risking a channel whose Hangup already went by.
_DEST_ALIVE_EVENTS = frozenset({"DialBegin", "AgentCalled", "AgentConnect"})
_MEMBER_EVENTS = frozenset(
    {"QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause", "QueueMemberPenalty"}
)
# What every queue event of a real Asterisk carries (each of the 108 in the
# captures of ivr/sim/transcripts/). One without them cannot be a call's: it
# must not start one, or junk would be stored as queue calls.
_QUEUE_EVENT_FIELDS = ("Queue", "Channel", "Uniqueid", "Linkedid")
_LISTED_CHANNEL_EVENTS = frozenset({"CoreShowChannel", "Status"})
_RESYNC_EVENTS = _LISTED_CHANNEL_EVENTS | {"BridgeInfoChannel"}
_REASONS = {
    "agent": HangupSide.AGENT,
    "caller": HangupSide.CALLER,
    "transfer": HangupSide.TRANSFER,
}
_UNKNOWN_ID = "<unknown>"

_DIGITS = re.compile(r"\s*(\d{1,12})\s*", re.ASCII)
_DURATION = re.compile(r"\s*(\d{1,9}):(\d{1,2}):(\d{1,2})\s*", re.ASCII)
# `Local/agent1@agents-0000000f;1`, `PJSIP/sipp-00000001`: the per-channel suffix.
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(?:;[0-9]+)?$")
# `Local/agent1@agents/n`: Local interfaces carry dial options after the context.
_LOCAL_OPTIONS = re.compile(r"^(Local/[^/]*@[^/]*)/[A-Za-z]*$", re.IGNORECASE)
_LOCAL_HALF = re.compile(r"^(Local/.+);([12])$", re.IGNORECASE)


def is_restart(event: AmiEvent, *, max_uptime: int = DEFAULT_RESTART_UPTIME) -> bool:
    """A FullyBooted with a small Uptime: Asterisk has just (re)started (fact 49).

    Asterisk sends no Hangup for the calls a restart killed (fact 47), so a
    service that sees this after a reconnect must consider them ended.
    """
    if event.name != "FullyBooted":
        return False
    uptime = _int(event.get("Uptime"))
    return uptime is not None and uptime <= max_uptime


def _int(value: str) -> int | None:
    """A whole non-negative number, or None for anything else (never raises)."""
    match = _DIGITS.fullmatch(value)
    return int(match.group(1)) if match else None


def _duration(value: str) -> int | None:
    """CoreShowChannel `Duration: 00:00:03` in seconds, or None."""
    match = _DURATION.fullmatch(value)
    if match is None:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _round_seconds(value: float) -> int | None:
    if not math.isfinite(value) or value < 0:
        return None
    return int(value + 0.5)


def _caller_id(value: str) -> str | None:
    """Empty caller id fields arrive as `<unknown>`; names are kept byte-exact (fact 50)."""
    return None if value in ("", _UNKNOWN_ID) else value


def _reason(value: str) -> HangupSide:
    return _REASONS.get(value.strip().lower(), HangupSide.UNKNOWN)


def _channel_key(channel: str) -> str:
    """The interface part of a channel name.

    `Local/agent1@agents-0000000f;1` -> `Local/agent1@agents`.
    """
    return _CHANNEL_SUFFIX.sub("", channel)


def _interface_key(interface: str) -> str:
    """A queue member interface without Local dial options.

    `Local/agent1@agents/n` -> `Local/agent1@agents`.
    """
    match = _LOCAL_OPTIONS.match(interface)
    return match.group(1) if match else interface


def _partner_name(channel: str) -> str | None:
    """The other half of a Local channel pair (`;1` <-> `;2`), None for other technologies."""
    match = _LOCAL_HALF.match(channel)
    if match is None:
        return None
    return f"{match.group(1)};{'2' if match.group(2) == '1' else '1'}"


def _dialed_interface(channel: str, dial_string: str) -> str:
    """The interface a Dial reached, spelled like a queue member interface.

    DialBegin gives `DialString: agent2@agents/n` on `Local/agent2@agents-…;1`,
    so technology + DialString is `Local/agent2@agents/n` (fact 37).
    """
    technology, slash, _ = channel.partition("/")
    if slash and dial_string:
        return f"{technology}/{dial_string}"
    return _channel_key(channel)


@dataclass(slots=True)
class _Member:
    """A queue member as last named by Asterisk, for naming agents that no Agent* event names."""

    name: str
    interface: str
    queues: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Channel:
    name: str
    alive: bool = True
    bridge: str | None = None
    application: str = ""


@dataclass(slots=True)
class _Leg:
    """A mutable agent leg; frozen into `AgentLeg` for every record."""

    name: str
    interface: str
    queue: str | None
    channel: str
    uniqueid: str  # the agent's channel (DestUniqueid), "" when unknown
    via: str  # the channel that sat in the queue: the caller, or a consultation channel
    connected_at: float
    hold: int | None = None
    ring: int | None = None
    talk: int | None = None
    ended_by: HangupSide | None = None
    completed: bool = False
    bridge: str | None = None  # direct legs only: the caller's bridge they joined

    def freeze(self) -> AgentLeg:
        return AgentLeg(
            name=self.name,
            interface=self.interface,
            queue=self.queue,
            channel=self.channel,
            connected_at=self.connected_at,
            hold_seconds=self.hold,
            ring_seconds=self.ring,
            talk_seconds=self.talk,
            ended_by=self.ended_by,
        )


@dataclass(frozen=True, slots=True)
class _Dial:
    channel: str
    dial_string: str
    callee_name: str | None


def _leg_time(leg: _Leg) -> float:
    return leg.connected_at


@dataclass(slots=True)
class _Queue:
    """What only queue calls carry; other calls never allocate it."""

    caller_uniqueid: str | None = None
    caller_channel: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    queue: str | None = None
    legs: list[_Leg] = field(default_factory=list)
    pending: list[_Leg] = field(default_factory=list)  # consultation legs not facing the caller yet
    abandoned: bool = False
    abandon_hold: int | None = None
    transferred: bool = False
    # Channels that can never be a direct leg: caller and consultation channels,
    # queue-dialled members, transferers and transfer targets.
    not_agents: set[str] = field(default_factory=set)
    dials: dict[str, _Dial] = field(default_factory=dict)

    def all_legs(self) -> list[_Leg]:
        return [*self.legs, *self.pending]

    def add_leg(self, leg: _Leg) -> None:
        bisect.insort(self.legs, leg, key=_leg_time)


@dataclass(slots=True)
class _Call:
    key: str
    started_at: float
    last_seen: float
    channels: dict[str, _Channel] = field(default_factory=dict)
    ended_at: float | None = None
    partial: bool = False
    provisional: bool = False  # keyed by a QueueEntry Uniqueid until its Linkedid is known
    # First learned from a resync list: started_at is estimated from the listed age.
    from_resync: bool = False
    aliases: tuple[str, ...] = ()
    q: _Queue | None = None

    @property
    def live(self) -> bool:
        return self.ended_at is None


@dataclass(slots=True)
class _Snapshot:
    """A CoreShowChannels list being received: which calls it showed alive."""

    count: int = 0
    keys: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Listed:
    uniqueid: str
    channel: str
    number: str | None
    name: str | None


def _missing(event: AmiEvent, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not event.get(name).strip()]


class CallTracker:
    """Follows every call of one PBX from its AMI events; see the module docstring for the rules."""

    def __init__(
        self,
        pbx: str,
        *,
        retention_seconds: float = 300.0,
        stale_seconds: float = 6 * 3600.0,
        max_calls: int = 100_000,
    ) -> None:
        self._pbx = pbx
        self._max_calls = max_calls
        # Calls forgotten to stay under max_calls, and the queue calls among
        # them ended early (as partial) so that feed() hands them on for storing.
        self.evicted_calls = 0
        self._ended_early: list[CallRecord] = []
        # Events ignored for lacking what a call needs, and the last one's why.
        self.refused_events = 0
        self.last_refusal = ""
        self._retention = retention_seconds
        self._stale = stale_seconds
        self._calls: dict[str, _Call] = {}
        self._index: dict[str, str] = {}  # Uniqueid -> call key
        self._aliases: dict[str, str] = {}  # former Linkedid -> current key
        self._members: dict[str, _Member] = {}  # interface key -> member
        self._snapshots: dict[str, _Snapshot] = {}  # CoreShowChannels lists by ActionID
        self._bridge_lists: dict[str, list[_Listed]] = {}  # BridgeInfoChannel items by ActionID
        self._last_event_at: float | None = None
        self._booted_at: float | None = None

    # --- public interface -------------------------------------------------

    @property
    def pbx(self) -> str:
        return self._pbx

    @property
    def live_count(self) -> int:
        """Calls of any kind not ended yet (queue calls and minimally tracked ones)."""
        return sum(1 for call in self._calls.values() if call.live)

    @property
    def tracked_count(self) -> int:
        """Everything held in memory: live calls plus ended calls awaiting eviction."""
        return len(self._calls)

    def feed(self, event: AmiEvent) -> list[CallRecord]:
        """Apply one event; return the calls that ENDED with it (to be persisted)."""
        now = event.received_at
        name = event.name
        if name == "FullyBooted":
            ended = self._fully_booted(event, now)
        elif name == "Shutdown":
            ended = self._end_all(now)
        else:
            ended = self._apply(event, name, now)
        if self._ended_early:
            ended = [*self._ended_early, *ended]
            self._ended_early = []
        if self._last_event_at is None or now > self._last_event_at:
            self._last_event_at = now
        return ended

    def get(self, linkedid: str) -> CallRecord | None:
        """The queue call with this Linkedid (or a former one of it), live or recently ended."""
        call = self._calls.get(self._aliases.get(linkedid, linkedid))
        return self._record(call) if call is not None else None

    def knows(self, linkedid: str) -> bool:
        """Whether an event of this Linkedid (or of a call it became) was seen and is still kept."""
        return self._aliases.get(linkedid, linkedid) in self._calls

    def find_by_uniqueid(self, uniqueid: str) -> CallRecord | None:
        """The queue call one of whose channels (caller, agent, consultation) has this Uniqueid."""
        key = self._index.get(uniqueid)
        call = self._calls.get(key) if key is not None else None
        return self._record(call) if call is not None else None

    def evict(self, now: float) -> int:
        """Forget calls ended more than retention_seconds ago, and calls silent for stale_seconds.

        The second rule bounds memory when Hangups never come (lost while AMI
        was disconnected, garbage Linkedids). Call `expire_stale()` first to
        persist the queue calls among them. Returns how many were dropped.
        """
        dropped = [
            call
            for call in self._calls.values()
            if (call.ended_at is not None and now - call.ended_at > self._retention)
            or (call.ended_at is None and now - call.last_seen > self._stale)
        ]
        for call in dropped:
            self._drop(call)
        return len(dropped)

    def expire_stale(self, now: float) -> list[CallRecord]:
        """End, as partial, the live calls silent for stale_seconds; return the queue calls."""
        ended: list[CallRecord] = []
        for call in list(self._calls.values()):
            if call.live and now - call.last_seen > self._stale:
                call.partial = True
                record = self._end(call, now, unseen=True)
                if record is not None:
                    ended.append(record)
        return ended

    def asterisk_restarted(self, now: float) -> list[CallRecord]:
        """Every live call is gone and no Hangup will come (facts 47, 49): end them, return them."""
        return self._end_all(now)

    # --- event dispatch ---------------------------------------------------

    def _apply(self, event: AmiEvent, name: str, now: float) -> list[CallRecord]:
        if name in _QUEUE_EVENTS and (missing := _missing(event, _QUEUE_EVENT_FIELDS)):
            self.refused_events += 1
            self.last_refusal = f"{name} without {', '.join(missing)}"
            return []
        self._learn_member(event, name)
        if name in ("BlindTransfer", "AttendedTransfer"):
            self._transfer(event, name, now)
            return []
        if name == "QueueEntry":
            self._queue_entry(event, now)
            return []
        if name == "BridgeInfoComplete":
            self._bridge_info_complete(event, now)
            return []
        if name == "CoreShowChannelsComplete":
            return self._reconcile(event, now)
        if name in _DEST_ALIVE_EVENTS:
            self._dest_channel(event, now)
        uniqueid = event.get("Uniqueid")
        resync = name in _RESYNC_EVENTS
        call = self._call_for(
            event.linkedid, uniqueid, now, create=name != "Hangup", from_resync=resync
        )
        if call is None or not uniqueid:
            return []
        channel = self._touch(call, uniqueid, event.get("Channel"), resync=resync)
        if name in _QUEUE_EVENTS:
            self._queue_event(call, event, name, uniqueid, now)
        elif name == "DialBegin":
            self._dial_begin(call, event)
        elif name == "BridgeEnter":
            self._bridge_enter(call, channel, event.get("BridgeUniqueid"), now)
        elif name == "BridgeLeave":
            self._bridge_leave(call, uniqueid, channel, event.get("BridgeUniqueid"), now)
        elif name == "Hangup":
            return self._hangup(call, uniqueid, channel, now)
        elif name == "Rename":
            channel.name = event.get("Newname") or channel.name
        elif name in _LISTED_CHANNEL_EVENTS:
            self._listed_channel(call, event, uniqueid=uniqueid, channel=channel, now=now)
        elif name == "BridgeInfoChannel":
            self._bridge_info_channel(event, uniqueid, channel)
        return []

    # --- calls and channels -----------------------------------------------

    def _new_call(self, key: str, now: float, *, from_resync: bool = False) -> _Call:
        if len(self._calls) >= self._max_calls:
            self._make_room(now)
        call = _Call(key=key, started_at=now, last_seen=now, from_resync=from_resync)
        self._calls[key] = call
        return call

    def _call_for(
        self, linkedid: str, uniqueid: str, now: float, *, create: bool, from_resync: bool = False
    ) -> _Call | None:
        """The live call an event belongs to; None if it belongs to an ended call.

        A known Uniqueid under another key means the channel's Linkedid changed
        (a bridge copies the oldest one), or a provisional QueueEntry record
        just learned its Linkedid: the two become one call under the new key.
        """
        key = self._aliases.get(linkedid, linkedid)
        known = self._index.get(uniqueid) if uniqueid else None
        if not key:
            if known is None:
                return None
            key = known
        call = self._calls.get(key)
        if call is not None and not call.live:
            return None
        if known is not None and known != key:
            previous = self._calls.get(known)
            if previous is not None and not previous.live:
                return None
            if previous is not None:
                if call is None:
                    call = self._new_call(
                        key, previous.started_at, from_resync=previous.from_resync
                    )
                self._merge(previous, call)
        if call is None:
            if not (create and uniqueid):
                return None
            call = self._new_call(key, now, from_resync=from_resync)
        if call.provisional and linkedid == key:
            call.provisional = False
        call.last_seen = max(call.last_seen, now)
        return call

    def _touch(self, call: _Call, uniqueid: str, name: str, *, resync: bool) -> _Channel:
        channel = call.channels.get(uniqueid)
        if channel is None:
            channel = _Channel(name)
            call.channels[uniqueid] = channel
            self._index[uniqueid] = call.key
            if resync:
                call.partial = True
        elif name and channel.name != name:
            channel.name = name
        return channel

    def _dest_channel(self, event: AmiEvent, now: float) -> None:
        uniqueid = event.get("DestUniqueid")
        if not uniqueid:
            return
        call = self._call_for(
            event.get("DestLinkedid") or event.linkedid, uniqueid, now, create=True
        )
        if call is not None:
            self._touch(call, uniqueid, event.get("DestChannel"), resync=False)

    def _merge(self, source: _Call, target: _Call) -> None:
        for uniqueid, channel in source.channels.items():
            target.channels.setdefault(uniqueid, channel)
            self._index[uniqueid] = target.key
        target.started_at = min(target.started_at, source.started_at)
        target.last_seen = max(target.last_seen, source.last_seen)
        target.partial = target.partial or source.partial
        target.from_resync = target.from_resync and source.from_resync
        if source.q is not None:
            if target.q is None:
                target.q = source.q
            else:
                _merge_queue(source.q, target.q)
        if not source.provisional:
            moved = (source.key, *source.aliases)
            target.aliases = (*target.aliases, *moved)
            for alias in moved:
                self._aliases[alias] = target.key
        del self._calls[source.key]

    def _make_room(self, now: float) -> None:
        """Forget a tenth of max_calls at once (so a flood costs one sort per
        tenth, not per event): ended calls first, oldest ended first; then live
        calls that never reached a queue (nothing of them is stored), longest
        silent first; only then live queue calls, ended as partial and stored."""

        def order(call: _Call) -> tuple[int, float]:
            if call.ended_at is not None:
                return (0, call.ended_at)
            return (1 if call.q is None else 2, call.last_seen)

        keep = self._max_calls - max(1, self._max_calls // 10)
        for call in sorted(self._calls.values(), key=order)[: len(self._calls) - keep]:
            if call.ended_at is None and call.q is not None:
                call.partial = True
                record = self._end(call, now, unseen=True)
                if record is not None:
                    self._ended_early.append(record)
            self._drop(call)
            self.evicted_calls += 1

    def _drop(self, call: _Call) -> None:
        self._calls.pop(call.key, None)
        for uniqueid in call.channels:
            if self._index.get(uniqueid) == call.key:
                del self._index[uniqueid]
        for alias in call.aliases:
            if self._aliases.get(alias) == call.key:
                del self._aliases[alias]

    def _end(self, call: _Call, now: float, *, unseen: bool = False) -> CallRecord | None:
        """Mark a call ended: a queue call is kept for get() and returned, others forgotten.

        `unseen`: the call ended without its Hangups reaching us (AMI down,
        Asterisk restarted, events lost), so an agent leg still open was ended
        by nobody we know of: `unknown`, which the stored row keeps apart from
        a leg still talking.
        """
        call.ended_at = now
        if unseen and call.q is not None:
            for leg in call.q.legs:
                if not leg.completed and leg.ended_by is None:
                    leg.ended_by = HangupSide.UNKNOWN
        for channel in call.channels.values():
            channel.alive = False
            channel.bridge = None
        if call.q is None:
            self._drop(call)
            return None
        return self._record(call)

    def _end_all(self, now: float) -> list[CallRecord]:
        ended = [
            record
            for call in list(self._calls.values())
            if call.live and (record := self._end(call, now, unseen=True)) is not None
        ]
        ended.sort(key=lambda record: record.started_at or 0.0)
        return ended

    def _hangup(
        self, call: _Call, uniqueid: str, channel: _Channel, now: float
    ) -> list[CallRecord]:
        q = call.q
        if q is not None:
            caller = call.channels.get(q.caller_uniqueid or "")
            side = HangupSide.AGENT if caller is not None and caller.alive else HangupSide.CALLER
            for leg in q.legs:
                if leg.uniqueid == uniqueid and leg.bridge is not None and not leg.completed:
                    _end_direct_leg(leg, now, side)
        channel.alive = False
        channel.bridge = None
        if any(other.alive for other in call.channels.values()):
            return []
        record = self._end(call, now)
        return [record] if record is not None else []

    def _fully_booted(self, event: AmiEvent, now: float) -> list[CallRecord]:
        """A login. Asterisk booted after the last event we saw: it restarted (fact 49).

        Otherwise it is a reconnect, and the queue calls still live may have
        lost events meanwhile: they become partial.
        """
        self._booted_at = now
        uptime = _int(event.get("Uptime"))
        last = self._last_event_at
        if uptime is not None and last is not None and now - uptime > last:
            return self._end_all(now)
        for call in self._calls.values():
            if call.live and call.q is not None:
                call.partial = True
        return []

    # --- queue events -----------------------------------------------------

    def _queue_of(self, call: _Call, *, joined: bool) -> _Queue:
        """The queue part of a call, created by its first queue event.

        A first queue event other than QueueCallerJoin means the tracker
        started (or reconnected) after the caller joined: the record is partial.
        """
        if call.q is None:
            call.q = _Queue()
            if not joined:
                call.partial = True
        return call.q

    def _note_caller(self, call: _Call, q: _Queue, listed: _Listed, *, resync: bool) -> bool:
        """Record the queue caller from its first queue event; True if `listed` is the caller.

        A second channel in a queue under the same Linkedid is a consultation
        call (fact 34): it never replaces the caller.
        """
        if q.caller_uniqueid is None:
            q.caller_uniqueid = listed.uniqueid
            q.caller_channel = listed.channel or None
            q.caller_number = listed.number
            q.caller_name = listed.name
            q.not_agents.add(listed.uniqueid)
            if resync:
                call.partial = True
            return True
        if q.caller_uniqueid != listed.uniqueid:
            q.not_agents.add(listed.uniqueid)
            return False
        learned = False
        if q.caller_channel is None and listed.channel:
            q.caller_channel, learned = listed.channel, True
        if q.caller_number is None and listed.number is not None:
            q.caller_number, learned = listed.number, True
        if q.caller_name is None and listed.name is not None:
            q.caller_name, learned = listed.name, True
        if learned and resync:
            call.partial = True
        return True

    def _queue_event(
        self, call: _Call, event: AmiEvent, name: str, uniqueid: str, now: float
    ) -> None:
        q = self._queue_of(call, joined=name == "QueueCallerJoin")
        is_caller = self._note_caller(call, q, _listed(event, uniqueid), resync=False)
        queue = event.get("Queue") or None
        if name == "QueueCallerJoin":
            if is_caller and queue is not None:
                q.queue = queue
        elif name == "QueueCallerAbandon":
            if is_caller:
                q.abandoned = True
                q.abandon_hold = _int(event.get("HoldTime"))
                q.queue = queue or q.queue
        elif name == "AgentCalled":
            if destination := event.get("DestUniqueid"):
                q.not_agents.add(destination)
        elif name == "AgentConnect":
            self._agent_connect(call, q, event, uniqueid, now)
        elif name == "AgentComplete":
            self._agent_complete(call, q, event, uniqueid, now)

    def _agent_connect(
        self, call: _Call, q: _Queue, event: AmiEvent, uniqueid: str, now: float
    ) -> None:
        destination = event.get("DestUniqueid")
        if destination:
            q.not_agents.add(destination)
            if any(leg.uniqueid == destination for leg in q.all_legs()):
                return  # the same connection reported twice
        leg = _Leg(
            name=event.get("MemberName") or event.get("Interface") or event.get("DestChannel"),
            interface=event.get("Interface"),
            queue=event.get("Queue") or None,
            channel=event.get("DestChannel"),
            uniqueid=destination,
            via=uniqueid,
            connected_at=now,
            hold=_int(event.get("HoldTime")),
            ring=_int(event.get("RingTime")),  # seconds here; AgentRingNoAnswer's is ms
        )
        self._place(call, q, leg)

    def _agent_complete(
        self, call: _Call, q: _Queue, event: AmiEvent, uniqueid: str, now: float
    ) -> None:
        duplicate, leg = _open_leg(q, event, uniqueid)
        if duplicate:
            return
        talk = _int(event.get("TalkTime"))
        if leg is None:
            # The AgentConnect was missed (tracker started or reconnected meanwhile).
            leg = _Leg(
                name=event.get("MemberName") or event.get("Interface") or event.get("DestChannel"),
                interface=event.get("Interface"),
                queue=event.get("Queue") or None,
                channel=event.get("DestChannel"),
                uniqueid=event.get("DestUniqueid"),
                via=uniqueid,
                connected_at=now - talk if talk is not None else now,
            )
            call.partial = True
            self._place(call, q, leg)
        leg.talk = talk
        leg.ended_by = _reason(event.get("Reason"))
        leg.completed = True
        if leg.hold is None:
            leg.hold = _int(event.get("HoldTime"))
        if leg.ended_by is HangupSide.TRANSFER:
            q.transferred = True
            self._commit_pending(call, q)

    def _place(self, call: _Call, q: _Queue, leg: _Leg) -> None:
        """A leg on the caller's own channel faces the caller; a consultation's waits (fact 34)."""
        if leg.via == q.caller_uniqueid or leg.via in self._facing(call, q):
            q.add_leg(leg)
        else:
            q.pending.append(leg)

    def _commit_pending(self, call: _Call, q: _Queue) -> None:
        """The transfer succeeded: consulted agents still talking now speak with the caller."""
        for leg in q.pending:
            consultation = call.channels.get(leg.via)
            if not leg.completed and (consultation is None or consultation.alive):
                q.add_leg(leg)
        q.pending.clear()

    # --- bridges, dials and transfers --------------------------------------

    def _facing(self, call: _Call, q: _Queue) -> dict[str, _Channel]:
        """Channels the caller can hear: in its bridge, or bridged with a Local half that is.

        The second case is a consultation or transfer target Local pair whose
        `;1` was moved into the caller's bridge (facts 35, 37).
        """
        caller = call.channels.get(q.caller_uniqueid or "")
        if caller is None or caller.bridge is None or not caller.alive:
            return {}
        bridges = {caller.bridge}
        for channel in call.channels.values():
            if channel.bridge == caller.bridge:
                partner = _partner(call, channel.name)
                if partner is not None and partner[1].bridge is not None:
                    bridges.add(partner[1].bridge)
        return {
            uniqueid: channel
            for uniqueid, channel in call.channels.items()
            if channel.alive and channel.bridge in bridges
        }

    def _dial_begin(self, call: _Call, event: AmiEvent) -> None:
        q = call.q
        destination = event.get("DestUniqueid")
        if q is not None and destination:
            q.dials[destination] = _Dial(
                channel=event.get("DestChannel"),
                dial_string=event.get("DialString"),
                callee_name=_caller_id(event.get("DestCallerIDName")),
            )

    def _bridge_enter(self, call: _Call, channel: _Channel, bridge: str, now: float) -> None:
        if not bridge:
            return
        channel.bridge = bridge
        q = call.q
        if q is None:
            return
        if q.pending:
            facing = self._facing(call, q)
            for leg in list(q.pending):
                if not leg.completed and leg.via in facing:
                    q.pending.remove(leg)
                    q.add_leg(leg)
        if q.transferred:
            self._find_direct_legs(call, q, now)

    def _bridge_leave(
        self, call: _Call, uniqueid: str, channel: _Channel, bridge: str, now: float
    ) -> None:
        q = call.q
        if q is not None:
            caller = call.channels.get(q.caller_uniqueid or "")
            caller_stays = caller is not None and caller.bridge == bridge
            for leg in q.legs:
                if (
                    leg.uniqueid == uniqueid
                    and leg.bridge is not None
                    and leg.bridge == bridge
                    and not leg.completed
                ):
                    side = HangupSide.AGENT if caller_stays else HangupSide.CALLER
                    _end_direct_leg(leg, now, side)
        if channel.bridge == bridge or not bridge:
            channel.bridge = None

    def _transfer(self, event: AmiEvent, name: str, now: float) -> None:
        """BlindTransfer / AttendedTransfer carry prefixed channel fields only (facts 29, 35)."""
        if name == "BlindTransfer":
            parties: tuple[str, ...] = ("Transferer",)
            lookup: tuple[str, ...] = ("Transferee", "Transferer")
        else:
            parties = ("OrigTransferer", "SecondTransferer", "TransferTarget")
            lookup = ("Transferee", *parties)
        call: _Call | None = None
        for prefix in lookup:
            call = self._call_for(
                event.get(f"{prefix}Linkedid"), event.get(f"{prefix}Uniqueid"), now, create=False
            )
            if call is not None:
                break
        if call is None or call.q is None or event.get("Result") != "Success":
            return
        q = call.q
        q.transferred = True
        for prefix in parties:
            uniqueid = event.get(f"{prefix}Uniqueid")
            if not uniqueid:
                continue
            q.not_agents.add(uniqueid)
            for leg in q.legs:
                if leg.uniqueid == uniqueid and leg.bridge is not None and not leg.completed:
                    _end_direct_leg(leg, now, HangupSide.TRANSFER)
        if name == "AttendedTransfer":
            self._commit_pending(call, q)
        self._find_direct_legs(call, q, now)

    def _find_direct_legs(self, call: _Call, q: _Queue, now: float) -> None:
        """After a transfer, a dialled agent facing the caller is a leg with no queue (fact 37)."""
        caller = call.channels.get(q.caller_uniqueid or "")
        if caller is None or caller.bridge is None:
            return
        known = {leg.uniqueid for leg in q.all_legs()}
        for uniqueid, channel in self._facing(call, q).items():
            if uniqueid in known or uniqueid == call.key or uniqueid in q.not_agents:
                continue
            dial = q.dials.get(uniqueid)
            if dial is None:
                continue
            partner = _partner(call, channel.name)
            if partner is not None and partner[0] in q.not_agents:
                continue
            interface = _dialed_interface(channel.name, dial.dial_string)
            member = self._member(interface) or self._member(_channel_key(channel.name))
            name = member.name if member is not None else (dial.callee_name or interface)
            q.add_leg(
                _Leg(
                    name=name,
                    interface=interface,
                    queue=None,
                    channel=channel.name,
                    uniqueid=uniqueid,
                    via=q.caller_uniqueid or "",
                    connected_at=now,
                    bridge=caller.bridge,
                )
            )

    # --- queue members ----------------------------------------------------

    def _learn_member(self, event: AmiEvent, name: str) -> None:
        """Remember member names by interface, to name agents that only a Dial shows."""
        if name == "QueueMember":
            member_name = event.get("Name")
            interface = event.get("Location") or event.get("StateInterface")
        elif name in _QUEUE_EVENTS or name in _MEMBER_EVENTS:
            member_name = event.get("MemberName")
            interface = event.get("Interface")
        elif name == "QueueMemberRemoved":
            removed = self._members.get(_interface_key(event.get("Interface")))
            if removed is not None:
                removed.queues.discard(event.get("Queue"))
            return
        else:
            return
        if not interface:
            return
        key = _interface_key(interface)
        member = self._members.pop(key, None)  # re-inserted last: the oldest is evicted first
        if member is None:
            member = _Member(member_name or interface, interface)
        elif member_name:
            member.name = member_name
        queue = event.get("Queue")
        if queue and len(member.queues) < _MAX_QUEUES_PER_MEMBER:
            member.queues.add(queue)
        self._members[key] = member
        while len(self._members) > _MAX_MEMBERS:
            del self._members[next(iter(self._members))]

    def _member(self, interface: str) -> _Member | None:
        return self._members.get(_interface_key(interface))

    # --- resync -----------------------------------------------------------

    def _queue_entry(self, event: AmiEvent, now: float) -> None:
        """QueueStatus lists a waiting caller with no Linkedid (fact 41)."""
        uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return
        key = self._index.get(uniqueid, uniqueid)
        call = self._calls.get(key)
        if call is None:
            call = self._new_call(uniqueid, now, from_resync=True)
            call.provisional = True
        elif not call.live:
            return
        call.last_seen = max(call.last_seen, now)
        self._touch(call, uniqueid, event.get("Channel"), resync=True)
        q = self._queue_of(call, joined=False)
        is_caller = self._note_caller(call, q, _listed(event, uniqueid), resync=True)
        queue = event.get("Queue") or None
        if is_caller and q.queue is None and queue is not None:
            q.queue = queue
            call.partial = True
        _estimate_start(call, now, _int(event.get("Wait")))

    def _listed_channel(
        self, call: _Call, event: AmiEvent, *, uniqueid: str, channel: _Channel, now: float
    ) -> None:
        """CoreShowChannel / Status: the channel's application and bridge (fact 42)."""
        channel.application = event.get("Application")
        channel.bridge = event.get("BridgeId") or None  # Status spells it BridgeID
        if event.name == "CoreShowChannel":
            age = _duration(event.get("Duration"))
            self._snapshot(event).keys.add(call.key)
        else:
            age = _int(event.get("Seconds"))
        _estimate_start(call, now, age)
        if channel.application == "Queue":
            q = self._queue_of(call, joined=False)
            data = event.get("ApplicationData") or event.get("Data")
            queue = data.split(",", 1)[0].strip() or None
            is_caller = self._note_caller(call, q, _listed(event, uniqueid), resync=True)
            if is_caller and q.queue is None and queue is not None:
                q.queue = queue
                call.partial = True
        self._resync_legs(call, now)

    def _snapshot(self, event: AmiEvent) -> _Snapshot:
        action = event.get("ActionID")
        snapshot = self._snapshots.get(action)
        if snapshot is None:
            snapshot = self._snapshots[action] = _Snapshot()
            while len(self._snapshots) > _MAX_OPEN_LISTS:
                del self._snapshots[next(iter(self._snapshots))]
        snapshot.count += 1
        return snapshot

    def _reconcile(self, event: AmiEvent, now: float) -> list[CallRecord]:
        """A complete CoreShowChannels lists every live channel (fact 40).

        A call it does not show, and not heard of since the last login, ended
        while the connection was down. The list's own timestamps cannot tell
        (events are stamped when the whole answer arrived), hence the login.
        """
        snapshot = self._snapshots.pop(event.get("ActionID"), _Snapshot())
        listed = _int(event.get("ListItems"))
        booted = self._booted_at
        if listed is None or listed != snapshot.count or booted is None:
            return []
        ended: list[CallRecord] = []
        for call in list(self._calls.values()):
            if call.live and call.key not in snapshot.keys and call.last_seen < booted:
                call.partial = True
                record = self._end(call, now, unseen=True)
                if record is not None:
                    ended.append(record)
        return ended

    def _bridge_info_channel(self, event: AmiEvent, uniqueid: str, channel: _Channel) -> None:
        """BridgeInfoChannel names no bridge; the closing BridgeInfoComplete does (fact 43)."""
        action = event.get("ActionID")
        items = self._bridge_lists.get(action)
        if items is None:
            items = self._bridge_lists[action] = []
            while len(self._bridge_lists) > _MAX_OPEN_LISTS:
                del self._bridge_lists[next(iter(self._bridge_lists))]
        items.append(_listed(event, uniqueid, channel.name))

    def _bridge_info_complete(self, event: AmiEvent, now: float) -> None:
        """Put the listed channels in their bridge; a member channel there is the caller's agent."""
        items = self._bridge_lists.pop(event.get("ActionID"), [])
        bridge = event.get("BridgeUniqueid")
        if not bridge:
            return
        by_call: dict[str, list[_Listed]] = {}
        for item in items:
            key = self._index.get(item.uniqueid)
            call = self._calls.get(key) if key is not None else None
            if call is None or not call.live or item.uniqueid not in call.channels:
                continue
            call.channels[item.uniqueid].bridge = bridge
            by_call.setdefault(call.key, []).append(item)
        for key, listed in by_call.items():
            call = self._calls[key]
            if call.q is None or call.q.caller_uniqueid is None:
                agents = [item for item in listed if self._member(_channel_key(item.channel))]
                others = [item for item in listed if item not in agents]
                if not agents or len(others) != 1:
                    continue  # nothing shows which side is the queue caller
                q = self._queue_of(call, joined=False)
                self._note_caller(call, q, others[0], resync=True)
            call.last_seen = max(call.last_seen, now)
            self._resync_legs(call, now)

    def _resync_legs(self, call: _Call, now: float) -> None:
        """A queue member channel in the caller's bridge is the agent talking to it now."""
        q = call.q
        if q is None:
            return
        caller = call.channels.get(q.caller_uniqueid or "")
        if caller is None or caller.bridge is None:
            return
        known = {leg.uniqueid for leg in q.all_legs()}
        for uniqueid, channel in call.channels.items():
            if (
                uniqueid in known
                or uniqueid == q.caller_uniqueid
                or not channel.alive
                or channel.bridge != caller.bridge
            ):
                continue
            member = self._member(_channel_key(channel.name))
            from_queue = channel.application == "AppQueue"
            if member is None and not from_queue:
                continue
            if from_queue or (member is not None and q.queue in member.queues):
                queue = q.queue
            elif member is not None and len(member.queues) == 1:
                queue = next(iter(member.queues))
            else:
                queue = None
            interface = member.interface if member is not None else _channel_key(channel.name)
            q.add_leg(
                _Leg(
                    name=member.name if member is not None else interface,
                    interface=interface,
                    queue=queue,
                    channel=channel.name,
                    uniqueid=uniqueid,
                    via=q.caller_uniqueid or "",
                    connected_at=now,  # when a resync showed it: the best time known
                )
            )
            q.not_agents.add(uniqueid)
            call.partial = True

    # --- records ----------------------------------------------------------

    def _record(self, call: _Call) -> CallRecord | None:
        q = call.q
        if q is None:
            return None
        last_from_queue = next((leg for leg in reversed(q.legs) if leg.queue is not None), None)
        if last_from_queue is not None:
            queue, hold = last_from_queue.queue, last_from_queue.hold
        else:
            queue, hold = q.queue, q.abandon_hold if q.abandoned else None
        talks = [leg.talk for leg in q.legs if leg.talk is not None]
        return CallRecord(
            pbx=self._pbx,
            linkedid=call.key,
            caller_uniqueid=q.caller_uniqueid,
            caller_channel=q.caller_channel,
            caller_number=q.caller_number,
            caller_name=q.caller_name,
            queue=queue,
            agents=tuple(leg.freeze() for leg in q.legs),
            hold_seconds=hold,
            talk_seconds=sum(talks) if talks else None,
            ended_by=q.legs[-1].ended_by if q.legs else None,
            abandoned=q.abandoned,
            transferred=q.transferred,
            partial=call.partial,
            started_at=call.started_at,
            answered_at=q.legs[0].connected_at if q.legs else None,
            ended_at=call.ended_at,
        )


def _estimate_start(call: _Call, now: float, age: int | None) -> None:
    """A call first seen in a resync started `age` seconds before the listing.

    Only then: the listed ages are whole seconds of Asterisk's clock, so for a
    call seen from its first event they would only blur an exact time.
    """
    if call.from_resync and age is not None:
        call.started_at = min(call.started_at, now - age)


def _listed(event: AmiEvent, uniqueid: str, channel: str | None = None) -> _Listed:
    return _Listed(
        uniqueid=uniqueid,
        channel=event.get("Channel") if channel is None else channel,
        number=_caller_id(event.get("CallerIDNum")),
        name=_caller_id(event.get("CallerIDName")),
    )


def _partner(call: _Call, name: str) -> tuple[str, _Channel] | None:
    partner_name = _partner_name(name)
    if partner_name is None:
        return None
    for uniqueid, channel in call.channels.items():
        if channel.name == partner_name:
            return uniqueid, channel
    return None


def _end_direct_leg(leg: _Leg, now: float, side: HangupSide) -> None:
    leg.talk = _round_seconds(now - leg.connected_at)
    leg.ended_by = side
    leg.completed = True


def _open_leg(q: _Queue, event: AmiEvent, via: str) -> tuple[bool, _Leg | None]:
    """The leg an AgentComplete closes, as (already closed, leg).

    By DestUniqueid when present; otherwise (fact 37: no Dest* headers at all)
    by queue, queue channel and member, then by member alone.
    """
    legs = q.all_legs()
    destination = event.get("DestUniqueid")
    if destination:
        for leg in reversed(legs):
            if leg.uniqueid == destination:
                return leg.completed, None if leg.completed else leg
    queue = event.get("Queue") or None
    interface = event.get("Interface")
    member = event.get("MemberName")
    candidates = [leg for leg in reversed(legs) if not leg.completed and leg.queue is not None]

    def same_agent(leg: _Leg) -> bool:
        return bool(interface and leg.interface == interface) or bool(member and leg.name == member)

    for leg in candidates:
        if leg.queue == queue and leg.via == via and same_agent(leg):
            return False, leg
    for leg in candidates:
        if leg.queue == queue and same_agent(leg):
            return False, leg
    for leg in candidates:
        if same_agent(leg):
            return False, leg
    return False, None


def _merge_queue(source: _Queue, target: _Queue) -> None:
    """Two queue calls joined by a bridge: keep the target's caller, pool the rest."""
    if target.caller_uniqueid is None:
        target.caller_uniqueid = source.caller_uniqueid
        target.caller_channel = source.caller_channel
        target.caller_number = source.caller_number
        target.caller_name = source.caller_name
    target.queue = target.queue or source.queue
    for leg in source.legs:
        target.add_leg(leg)
    target.pending.extend(source.pending)
    target.abandoned = target.abandoned or source.abandoned
    if target.abandon_hold is None:
        target.abandon_hold = source.abandon_hold
    target.transferred = target.transferred or source.transferred
    target.not_agents |= source.not_agents
    for uniqueid, dial in source.dials.items():
        target.dials.setdefault(uniqueid, dial)
