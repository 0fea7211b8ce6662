"""Queue rules: who the caller is, and one agent leg per AgentConnect (module docstring of calls).

The caller is fixed by the first queue event, so a consultation call through a
queue (fact 34) never replaces it; a leg reached through a consultation waits in
`pending` until it faces the caller or the transfer succeeds.
"""

from __future__ import annotations

from ivr.core.call_fields import hangup_reason, parse_int
from ivr.core.call_state import Call, Leg, Listed, QueueState, facing, listed_from
from ivr.core.domain import AmiEvent, HangupSide


def queue_of(call: Call, *, joined: bool) -> QueueState:
    """The queue part of a call, created by its first queue event.

    A first queue event other than QueueCallerJoin means the tracker
    started (or reconnected) after the caller joined: the record is partial.
    """
    if call.q is None:
        call.q = QueueState()
        if not joined:
            call.partial = True
    return call.q


def note_caller(call: Call, q: QueueState, listed: Listed, *, resync: bool) -> bool:
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


def queue_event(call: Call, event: AmiEvent, name: str, uniqueid: str, now: float) -> None:
    q = queue_of(call, joined=name == "QueueCallerJoin")
    is_caller = note_caller(call, q, listed_from(event, uniqueid), resync=False)
    queue = event.get("Queue") or None
    if name == "QueueCallerJoin":
        if is_caller and queue is not None:
            q.queue = queue
    elif name == "QueueCallerAbandon":
        if is_caller:
            q.abandoned = True
            q.abandon_hold = parse_int(event.get("HoldTime"))
            q.queue = queue or q.queue
    elif name == "AgentCalled":
        if destination := event.get("DestUniqueid"):
            q.not_agents.add(destination)
    elif name == "AgentConnect":
        _agent_connect(call, q, event, uniqueid, now)
    elif name == "AgentComplete":
        _agent_complete(call, q, event, uniqueid, now)


def _agent_connect(call: Call, q: QueueState, event: AmiEvent, uniqueid: str, now: float) -> None:
    destination = event.get("DestUniqueid")
    if destination:
        q.not_agents.add(destination)
        if any(leg.uniqueid == destination for leg in q.all_legs()):
            return  # the same connection reported twice
    leg = Leg(
        name=event.get("MemberName") or event.get("Interface") or event.get("DestChannel"),
        interface=event.get("Interface"),
        queue=event.get("Queue") or None,
        channel=event.get("DestChannel"),
        uniqueid=destination,
        via=uniqueid,
        connected_at=now,
        hold=parse_int(event.get("HoldTime")),
        ring=parse_int(event.get("RingTime")),  # seconds here; AgentRingNoAnswer's is ms
    )
    _place(call, q, leg)


def _agent_complete(call: Call, q: QueueState, event: AmiEvent, uniqueid: str, now: float) -> None:
    duplicate, leg = _open_leg(q, event, uniqueid)
    if duplicate:
        return
    talk = parse_int(event.get("TalkTime"))
    if leg is None:
        # The AgentConnect was missed (tracker started or reconnected meanwhile).
        leg = Leg(
            name=event.get("MemberName") or event.get("Interface") or event.get("DestChannel"),
            interface=event.get("Interface"),
            queue=event.get("Queue") or None,
            channel=event.get("DestChannel"),
            uniqueid=event.get("DestUniqueid"),
            via=uniqueid,
            connected_at=now - talk if talk is not None else now,
        )
        call.partial = True
        _place(call, q, leg)
    leg.talk = talk
    leg.ended_by = hangup_reason(event.get("Reason"))
    leg.completed = True
    if leg.hold is None:
        leg.hold = parse_int(event.get("HoldTime"))
    if leg.ended_by is HangupSide.TRANSFER:
        q.transferred = True
        commit_pending(call, q)


def _place(call: Call, q: QueueState, leg: Leg) -> None:
    """A leg on the caller's own channel faces the caller; a consultation's waits (fact 34)."""
    if leg.via == q.caller_uniqueid or leg.via in facing(call, q):
        q.add_leg(leg)
    else:
        q.pending.append(leg)


def commit_pending(call: Call, q: QueueState) -> None:
    """The transfer succeeded: consulted agents still talking now speak with the caller."""
    for leg in q.pending:
        consultation = call.channels.get(leg.via)
        if not leg.completed and (consultation is None or consultation.alive):
            q.add_leg(leg)
    q.pending.clear()


def _open_leg(q: QueueState, event: AmiEvent, via: str) -> tuple[bool, Leg | None]:
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

    def same_agent(leg: Leg) -> bool:
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
