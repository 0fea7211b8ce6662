"""The calls one tracker holds: keyed by Linkedid, found by Uniqueid, merged, ended, forgotten.

Every rule group asks this book for "the call this event belongs to", so the
key rules (a Linkedid that changes in a bridge, a provisional QueueEntry key,
a bounded number of calls) live in one place and no rule can get them wrong.
"""

from __future__ import annotations

from ivr.core.call_state import Call, Channel, merge_queue
from ivr.core.domain import AmiEvent, CallRecord, HangupSide


class CallBook:
    """Calls by key, with the Uniqueid index and the former Linkedids of each."""

    def __init__(self, pbx: str, *, max_calls: int) -> None:
        self.pbx = pbx
        self.max_calls = max_calls
        # Calls forgotten to stay under max_calls, and the queue calls among
        # them ended early (as partial) so that feed() hands them on for storing.
        self.evicted_calls = 0
        self.ended_early: list[CallRecord] = []
        self.calls: dict[str, Call] = {}
        self.index: dict[str, str] = {}  # Uniqueid -> call key
        self.aliases: dict[str, str] = {}  # former Linkedid -> current key

    def new_call(self, key: str, now: float, *, from_resync: bool = False) -> Call:
        if len(self.calls) >= self.max_calls:
            self._make_room(now)
        call = Call(key=key, started_at=now, last_seen=now, from_resync=from_resync)
        self.calls[key] = call
        return call

    def call_for(
        self, linkedid: str, uniqueid: str, now: float, *, create: bool, from_resync: bool = False
    ) -> Call | None:
        """The live call an event belongs to; None if it belongs to an ended call.

        A known Uniqueid under another key means the channel's Linkedid changed
        (a bridge copies the oldest one), or a provisional QueueEntry record
        just learned its Linkedid: the two become one call under the new key.
        """
        key = self.aliases.get(linkedid, linkedid)
        known = self.index.get(uniqueid) if uniqueid else None
        if not key:
            if known is None:
                return None
            key = known
        call = self.calls.get(key)
        if call is not None and not call.live:
            return None
        if known is not None and known != key:
            previous = self.calls.get(known)
            if previous is not None and not previous.live:
                return None
            if previous is not None:
                if call is None:
                    call = self.new_call(key, previous.started_at, from_resync=previous.from_resync)
                self._merge(previous, call)
        if call is None:
            if not (create and uniqueid):
                return None
            call = self.new_call(key, now, from_resync=from_resync)
        if call.provisional and linkedid == key:
            call.provisional = False
        call.last_seen = max(call.last_seen, now)
        return call

    def touch(self, call: Call, uniqueid: str, name: str, *, resync: bool) -> Channel:
        channel = call.channels.get(uniqueid)
        if channel is None:
            channel = Channel(name)
            call.channels[uniqueid] = channel
            self.index[uniqueid] = call.key
            if resync:
                call.partial = True
        elif name and channel.name != name:
            channel.name = name
        return channel

    def dest_channel(self, event: AmiEvent, now: float) -> None:
        uniqueid = event.get("DestUniqueid")
        if not uniqueid:
            return
        call = self.call_for(
            event.get("DestLinkedid") or event.linkedid, uniqueid, now, create=True
        )
        if call is not None:
            self.touch(call, uniqueid, event.get("DestChannel"), resync=False)

    def _merge(self, source: Call, target: Call) -> None:
        for uniqueid, channel in source.channels.items():
            target.channels.setdefault(uniqueid, channel)
            self.index[uniqueid] = target.key
        target.started_at = min(target.started_at, source.started_at)
        target.last_seen = max(target.last_seen, source.last_seen)
        target.partial = target.partial or source.partial
        target.from_resync = target.from_resync and source.from_resync
        if source.q is not None:
            if target.q is None:
                target.q = source.q
            else:
                merge_queue(source.q, target.q)
        if not source.provisional:
            moved = (source.key, *source.aliases)
            target.aliases = (*target.aliases, *moved)
            for alias in moved:
                self.aliases[alias] = target.key
        del self.calls[source.key]

    def _make_room(self, now: float) -> None:
        """Forget a tenth of max_calls at once (so a flood costs one sort per
        tenth, not per event): ended calls first, oldest ended first; then live
        calls that never reached a queue (nothing of them is stored), longest
        silent first; only then live queue calls, ended as partial and stored."""

        def order(call: Call) -> tuple[int, float]:
            if call.ended_at is not None:
                return (0, call.ended_at)
            return (1 if call.q is None else 2, call.last_seen)

        keep = self.max_calls - max(1, self.max_calls // 10)
        for call in sorted(self.calls.values(), key=order)[: len(self.calls) - keep]:
            if call.ended_at is None and call.q is not None:
                call.partial = True
                record = self.end(call, now, unseen=True)
                if record is not None:
                    self.ended_early.append(record)
            self.drop(call)
            self.evicted_calls += 1

    def drop(self, call: Call) -> None:
        self.calls.pop(call.key, None)
        for uniqueid in call.channels:
            if self.index.get(uniqueid) == call.key:
                del self.index[uniqueid]
        for alias in call.aliases:
            if self.aliases.get(alias) == call.key:
                del self.aliases[alias]

    def end(self, call: Call, now: float, *, unseen: bool = False) -> CallRecord | None:
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
            self.drop(call)
            return None
        return self.record(call)

    def end_all(self, now: float) -> list[CallRecord]:
        ended = [
            record
            for call in list(self.calls.values())
            if call.live and (record := self.end(call, now, unseen=True)) is not None
        ]
        ended.sort(key=lambda record: record.started_at or 0.0)
        return ended

    def end_unseen(self, calls: list[Call], now: float) -> list[CallRecord]:
        """End, as partial, calls whose Hangups were lost; return the queue calls among them."""
        ended: list[CallRecord] = []
        for call in calls:
            call.partial = True
            record = self.end(call, now, unseen=True)
            if record is not None:
                ended.append(record)
        return ended

    def record(self, call: Call) -> CallRecord | None:
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
            pbx=self.pbx,
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
