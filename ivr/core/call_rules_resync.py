"""Resync rules after a reconnect (facts 40-43): rebuild calls from the status lists.

QueueEntry, CoreShowChannel, Status and BridgeInfoChannel items arrive one
event at a time, and a list only means something once its closing event says
it is complete, so the open lists are kept here by ActionID until then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.core.call_book import CallBook
from ivr.core.call_fields import channel_key, parse_duration, parse_int
from ivr.core.call_members import MemberDirectory
from ivr.core.call_rules_queue import note_caller, queue_of
from ivr.core.call_state import Call, Channel, Leg, Listed, estimate_start, listed_from
from ivr.core.domain import AmiEvent, CallRecord

_MAX_OPEN_LISTS = 16


@dataclass(slots=True)
class _Snapshot:
    """A CoreShowChannels list being received: which calls it showed alive."""

    count: int = 0
    keys: set[str] = field(default_factory=set)


class Resync:
    """The resync lists being received, and what each item teaches about its call."""

    def __init__(self, book: CallBook, members: MemberDirectory) -> None:
        self._book = book
        self._members = members
        self._snapshots: dict[str, _Snapshot] = {}  # CoreShowChannels lists by ActionID
        self._bridge_lists: dict[str, list[Listed]] = {}  # BridgeInfoChannel items by ActionID

    def queue_entry(self, event: AmiEvent, now: float) -> None:
        """QueueStatus lists a waiting caller with no Linkedid (fact 41)."""
        uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return
        book = self._book
        key = book.index.get(uniqueid, uniqueid)
        call = book.calls.get(key)
        if call is None:
            call = book.new_call(uniqueid, now, from_resync=True)
            call.provisional = True
        elif not call.live:
            return
        call.last_seen = max(call.last_seen, now)
        book.touch(call, uniqueid, event.get("Channel"), resync=True)
        q = queue_of(call, joined=False)
        is_caller = note_caller(call, q, listed_from(event, uniqueid), resync=True)
        queue = event.get("Queue") or None
        if is_caller and q.queue is None and queue is not None:
            q.queue = queue
            call.partial = True
        estimate_start(call, now, parse_int(event.get("Wait")))

    def listed_channel(
        self, call: Call, event: AmiEvent, *, uniqueid: str, channel: Channel, now: float
    ) -> None:
        """CoreShowChannel / Status: the channel's application and bridge (fact 42)."""
        channel.application = event.get("Application")
        channel.bridge = event.get("BridgeId") or None  # Status spells it BridgeID
        if event.name == "CoreShowChannel":
            age = parse_duration(event.get("Duration"))
            self._snapshot(event).keys.add(call.key)
        else:
            age = parse_int(event.get("Seconds"))
        estimate_start(call, now, age)
        if channel.application == "Queue":
            q = queue_of(call, joined=False)
            data = event.get("ApplicationData") or event.get("Data")
            queue = data.split(",", 1)[0].strip() or None
            is_caller = note_caller(call, q, listed_from(event, uniqueid), resync=True)
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

    def reconcile(self, event: AmiEvent, now: float, booted: float | None) -> list[CallRecord]:
        """A complete CoreShowChannels lists every live channel (fact 40).

        A call it does not show, and not heard of since the last login, ended
        while the connection was down. The list's own timestamps cannot tell
        (events are stamped when the whole answer arrived), hence the login.
        """
        snapshot = self._snapshots.pop(event.get("ActionID"), _Snapshot())
        listed = parse_int(event.get("ListItems"))
        if listed is None or listed != snapshot.count or booted is None:
            return []
        lost = [
            call
            for call in self._book.calls.values()
            if call.live and call.key not in snapshot.keys and call.last_seen < booted
        ]
        return self._book.end_unseen(lost, now)

    def bridge_info_channel(self, event: AmiEvent, uniqueid: str, channel: Channel) -> None:
        """BridgeInfoChannel names no bridge; the closing BridgeInfoComplete does (fact 43)."""
        action = event.get("ActionID")
        items = self._bridge_lists.get(action)
        if items is None:
            items = self._bridge_lists[action] = []
            while len(self._bridge_lists) > _MAX_OPEN_LISTS:
                del self._bridge_lists[next(iter(self._bridge_lists))]
        items.append(listed_from(event, uniqueid, channel.name))

    def bridge_info_complete(self, event: AmiEvent, now: float) -> None:
        """Put the listed channels in their bridge; a member channel there is the caller's agent."""
        items = self._bridge_lists.pop(event.get("ActionID"), [])
        bridge = event.get("BridgeUniqueid")
        if not bridge:
            return
        calls, index = self._book.calls, self._book.index
        by_call: dict[str, list[Listed]] = {}
        for item in items:
            key = index.get(item.uniqueid)
            call = calls.get(key) if key is not None else None
            if call is None or not call.live or item.uniqueid not in call.channels:
                continue
            call.channels[item.uniqueid].bridge = bridge
            by_call.setdefault(call.key, []).append(item)
        for key, listed in by_call.items():
            call = calls[key]
            if call.q is None or call.q.caller_uniqueid is None:
                agents = [item for item in listed if self._members.find(channel_key(item.channel))]
                others = [item for item in listed if item not in agents]
                if not agents or len(others) != 1:
                    continue  # nothing shows which side is the queue caller
                q = queue_of(call, joined=False)
                note_caller(call, q, others[0], resync=True)
            call.last_seen = max(call.last_seen, now)
            self._resync_legs(call, now)

    def _resync_legs(self, call: Call, now: float) -> None:
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
            member = self._members.find(channel_key(channel.name))
            from_queue = channel.application == "AppQueue"
            if member is None and not from_queue:
                continue
            if from_queue or (member is not None and q.queue in member.queues):
                queue = q.queue
            elif member is not None and len(member.queues) == 1:
                queue = next(iter(member.queues))
            else:
                queue = None
            interface = member.interface if member is not None else channel_key(channel.name)
            q.add_leg(
                Leg(
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
