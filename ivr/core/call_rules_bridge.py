"""Bridge, dial, transfer and hangup rules: who faces the caller, and direct transfers.

A direct attended transfer (fact 37) shows its target through no Agent* event,
only through a Dial and the bridges its channels join, so the legs of such a
transfer are found and timed here from bridge and hangup events.
"""

from __future__ import annotations

from ivr.core.call_book import CallBook
from ivr.core.call_fields import caller_id, channel_key, dialed_interface
from ivr.core.call_members import MemberDirectory
from ivr.core.call_rules_queue import commit_pending
from ivr.core.call_state import (
    Call,
    Channel,
    Dial,
    Leg,
    QueueState,
    end_direct_leg,
    facing,
    partner,
)
from ivr.core.domain import AmiEvent, CallRecord, HangupSide


def dial_begin(call: Call, event: AmiEvent) -> None:
    q = call.q
    destination = event.get("DestUniqueid")
    if q is not None and destination:
        q.dials[destination] = Dial(
            channel=event.get("DestChannel"),
            dial_string=event.get("DialString"),
            callee_name=caller_id(event.get("DestCallerIDName")),
        )


def bridge_enter(
    call: Call, channel: Channel, bridge: str, now: float, members: MemberDirectory
) -> None:
    if not bridge:
        return
    channel.bridge = bridge
    q = call.q
    if q is None:
        return
    if q.pending:
        heard = facing(call, q)
        for leg in list(q.pending):
            if not leg.completed and leg.via in heard:
                q.pending.remove(leg)
                q.add_leg(leg)
    if q.transferred:
        _find_direct_legs(call, q, now, members)


def bridge_leave(call: Call, uniqueid: str, channel: Channel, bridge: str, now: float) -> None:
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
                end_direct_leg(leg, now, side)
    if channel.bridge == bridge or not bridge:
        channel.bridge = None


def hangup(
    book: CallBook, call: Call, uniqueid: str, channel: Channel, now: float
) -> list[CallRecord]:
    q = call.q
    if q is not None:
        caller = call.channels.get(q.caller_uniqueid or "")
        side = HangupSide.AGENT if caller is not None and caller.alive else HangupSide.CALLER
        for leg in q.legs:
            if leg.uniqueid == uniqueid and leg.bridge is not None and not leg.completed:
                end_direct_leg(leg, now, side)
    channel.alive = False
    channel.bridge = None
    if any(other.alive for other in call.channels.values()):
        return []
    record = book.end(call, now)
    return [record] if record is not None else []


def transfer(
    book: CallBook, members: MemberDirectory, event: AmiEvent, name: str, now: float
) -> None:
    """BlindTransfer / AttendedTransfer carry prefixed channel fields only (facts 29, 35)."""
    if name == "BlindTransfer":
        parties: tuple[str, ...] = ("Transferer",)
        lookup: tuple[str, ...] = ("Transferee", "Transferer")
    else:
        parties = ("OrigTransferer", "SecondTransferer", "TransferTarget")
        lookup = ("Transferee", *parties)
    call: Call | None = None
    for prefix in lookup:
        call = book.call_for(
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
                end_direct_leg(leg, now, HangupSide.TRANSFER)
    if name == "AttendedTransfer":
        commit_pending(call, q)
    _find_direct_legs(call, q, now, members)


def _find_direct_legs(call: Call, q: QueueState, now: float, members: MemberDirectory) -> None:
    """After a transfer, a dialled agent facing the caller is a leg with no queue (fact 37)."""
    caller = call.channels.get(q.caller_uniqueid or "")
    if caller is None or caller.bridge is None:
        return
    known = {leg.uniqueid for leg in q.all_legs()}
    for uniqueid, channel in facing(call, q).items():
        if uniqueid in known or uniqueid == call.key or uniqueid in q.not_agents:
            continue
        dial = q.dials.get(uniqueid)
        if dial is None:
            continue
        other = partner(call, channel.name)
        if other is not None and other[0] in q.not_agents:
            continue
        interface = dialed_interface(channel.name, dial.dial_string)
        member = members.find(interface) or members.find(channel_key(channel.name))
        name = member.name if member is not None else (dial.callee_name or interface)
        q.add_leg(
            Leg(
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
