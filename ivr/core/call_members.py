"""Queue member names by interface, for naming agents that no Agent* event names.

A direct attended transfer (fact 37) and a resync only show an agent's channel;
the member events of the queues are the one place its name is said. The book is
bounded because members come and go over months while the tracker runs.
"""

from __future__ import annotations

from ivr.core.call_events import MEMBER_EVENTS, QUEUE_EVENTS
from ivr.core.call_fields import interface_key
from ivr.core.call_state import Member
from ivr.core.domain import AmiEvent

_MAX_MEMBERS = 4096
_MAX_QUEUES_PER_MEMBER = 64


class MemberDirectory:
    """The queue members one PBX named last, oldest named evicted first."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}  # interface key -> member

    def learn(self, event: AmiEvent, name: str) -> None:
        """Remember member names by interface, to name agents that only a Dial shows."""
        if name == "QueueMember":
            member_name = event.get("Name")
            interface = event.get("Location") or event.get("StateInterface")
        elif name in QUEUE_EVENTS or name in MEMBER_EVENTS:
            member_name = event.get("MemberName")
            interface = event.get("Interface")
        elif name == "QueueMemberRemoved":
            removed = self._members.get(interface_key(event.get("Interface")))
            if removed is not None:
                removed.queues.discard(event.get("Queue"))
            return
        else:
            return
        if not interface:
            return
        key = interface_key(interface)
        member = self._members.pop(key, None)  # re-inserted last: the oldest is evicted first
        if member is None:
            member = Member(member_name or interface, interface)
        elif member_name:
            member.name = member_name
        queue = event.get("Queue")
        if queue and len(member.queues) < _MAX_QUEUES_PER_MEMBER:
            member.queues.add(queue)
        self._members[key] = member
        while len(self._members) > _MAX_MEMBERS:
            del self._members[next(iter(self._members))]

    def find(self, interface: str) -> Member | None:
        return self._members.get(interface_key(interface))
