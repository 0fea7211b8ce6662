"""What the call tracker remembers of one call while it is live, and queries on it.

Mutable on purpose: one AMI event changes a field or two, and a call sees
hundreds of events, so the state is updated in place and frozen into a
`CallRecord` only when someone asks for it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ivr.core.call_fields import caller_id, partner_name, round_seconds
from ivr.core.domain import AgentLeg, AmiEvent, HangupSide


@dataclass(slots=True)
class Member:
    """A queue member as last named by Asterisk, for naming agents that no Agent* event names."""

    name: str
    interface: str
    queues: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Channel:
    name: str
    alive: bool = True
    bridge: str | None = None
    application: str = ""


@dataclass(slots=True)
class Leg:
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
class Dial:
    channel: str
    dial_string: str
    callee_name: str | None


def _leg_time(leg: Leg) -> float:
    return leg.connected_at


@dataclass(slots=True)
class QueueState:
    """What only queue calls carry; other calls never allocate it."""

    caller_uniqueid: str | None = None
    caller_channel: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    queue: str | None = None
    legs: list[Leg] = field(default_factory=list)
    pending: list[Leg] = field(default_factory=list)  # consultation legs not facing the caller yet
    abandoned: bool = False
    abandon_hold: int | None = None
    transferred: bool = False
    # Channels that can never be a direct leg: caller and consultation channels,
    # queue-dialled members, transferers and transfer targets.
    not_agents: set[str] = field(default_factory=set)
    dials: dict[str, Dial] = field(default_factory=dict)

    def all_legs(self) -> list[Leg]:
        return [*self.legs, *self.pending]

    def add_leg(self, leg: Leg) -> None:
        bisect.insort(self.legs, leg, key=_leg_time)


@dataclass(slots=True)
class Call:
    key: str
    started_at: float
    last_seen: float
    channels: dict[str, Channel] = field(default_factory=dict)
    ended_at: float | None = None
    partial: bool = False
    provisional: bool = False  # keyed by a QueueEntry Uniqueid until its Linkedid is known
    # First learned from a resync list: started_at is estimated from the listed age.
    from_resync: bool = False
    aliases: tuple[str, ...] = ()
    q: QueueState | None = None

    @property
    def live(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class Listed:
    uniqueid: str
    channel: str
    number: str | None
    name: str | None


def listed_from(event: AmiEvent, uniqueid: str, channel: str | None = None) -> Listed:
    return Listed(
        uniqueid=uniqueid,
        channel=event.get("Channel") if channel is None else channel,
        number=caller_id(event.get("CallerIDNum")),
        name=caller_id(event.get("CallerIDName")),
    )


def partner(call: Call, name: str) -> tuple[str, Channel] | None:
    other_half = partner_name(name)
    if other_half is None:
        return None
    for uniqueid, channel in call.channels.items():
        if channel.name == other_half:
            return uniqueid, channel
    return None


def facing(call: Call, q: QueueState) -> dict[str, Channel]:
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
            other = partner(call, channel.name)
            if other is not None and other[1].bridge is not None:
                bridges.add(other[1].bridge)
    return {
        uniqueid: channel
        for uniqueid, channel in call.channels.items()
        if channel.alive and channel.bridge in bridges
    }


def end_direct_leg(leg: Leg, now: float, side: HangupSide) -> None:
    leg.talk = round_seconds(now - leg.connected_at)
    leg.ended_by = side
    leg.completed = True


def estimate_start(call: Call, now: float, age: int | None) -> None:
    """A call first seen in a resync started `age` seconds before the listing.

    Only then: the listed ages are whole seconds of Asterisk's clock, so for a
    call seen from its first event they would only blur an exact time.
    """
    if call.from_resync and age is not None:
        call.started_at = min(call.started_at, now - age)


def merge_queue(source: QueueState, target: QueueState) -> None:
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
