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

from ivr.core.call_book import CallBook
from ivr.core.call_events import (
    DEST_ALIVE_EVENTS,
    LISTED_CHANNEL_EVENTS,
    QUEUE_EVENT_FIELDS,
    QUEUE_EVENTS,
    RESYNC_EVENTS,
)
from ivr.core.call_fields import missing_fields, parse_int
from ivr.core.call_members import MemberDirectory
from ivr.core.call_rules_bridge import bridge_enter, bridge_leave, dial_begin, hangup, transfer
from ivr.core.call_rules_queue import queue_event
from ivr.core.call_rules_resync import Resync
from ivr.core.domain import AmiEvent, CallRecord

__all__ = ["DEFAULT_RESTART_UPTIME", "CallTracker", "is_restart"]

# Seconds of Uptime under which a FullyBooted is taken as a fresh start. After
# `core restart now` the reconnect saw Uptime 1 (fact 49); a minute leaves room
# for a slower boot or reconnect without mistaking a long-running Asterisk.
DEFAULT_RESTART_UPTIME = 60


def is_restart(event: AmiEvent, *, max_uptime: int = DEFAULT_RESTART_UPTIME) -> bool:
    """A FullyBooted with a small Uptime: Asterisk has just (re)started (fact 49).

    Asterisk sends no Hangup for the calls a restart killed (fact 47), so a
    service that sees this after a reconnect must consider them ended.
    """
    if event.name != "FullyBooted":
        return False
    uptime = parse_int(event.get("Uptime"))
    return uptime is not None and uptime <= max_uptime


class CallTracker:
    """Follows every call of one PBX from its AMI events; see the module docstring for the rules.

    The rule groups live in the `ivr.core.call_rules_*` modules, the calls
    themselves in a `CallBook`; this class only routes each event to them.
    """

    def __init__(
        self,
        pbx: str,
        *,
        retention_seconds: float = 300.0,
        stale_seconds: float = 6 * 3600.0,
        max_calls: int = 100_000,
    ) -> None:
        self._book = CallBook(pbx, max_calls=max_calls)
        self._members = MemberDirectory()
        self._resync = Resync(self._book, self._members)
        # Events ignored for lacking what a call needs, and the last one's why.
        self.refused_events = 0
        self.last_refusal = ""
        self._retention = retention_seconds
        self._stale = stale_seconds
        self._last_event_at: float | None = None
        self._booted_at: float | None = None

    # --- public interface -------------------------------------------------

    @property
    def pbx(self) -> str:
        return self._book.pbx

    @property
    def evicted_calls(self) -> int:
        """Calls forgotten to stay under max_calls (the queue calls among them were stored)."""
        return self._book.evicted_calls

    @property
    def live_count(self) -> int:
        """Calls of any kind not ended yet (queue calls and minimally tracked ones)."""
        return sum(1 for call in self._book.calls.values() if call.live)

    @property
    def tracked_count(self) -> int:
        """Everything held in memory: live calls plus ended calls awaiting eviction."""
        return len(self._book.calls)

    def feed(self, event: AmiEvent) -> list[CallRecord]:
        """Apply one event; return the calls that ENDED with it (to be persisted)."""
        now = event.received_at
        name = event.name
        if name == "FullyBooted":
            ended = self._fully_booted(event, now)
        elif name == "Shutdown":
            ended = self._book.end_all(now)
        else:
            ended = self._apply(event, name, now)
        book = self._book
        if book.ended_early:
            ended = [*book.ended_early, *ended]
            book.ended_early = []
        if self._last_event_at is None or now > self._last_event_at:
            self._last_event_at = now
        return ended

    def get(self, linkedid: str) -> CallRecord | None:
        """The queue call with this Linkedid (or a former one of it), live or recently ended."""
        book = self._book
        call = book.calls.get(book.aliases.get(linkedid, linkedid))
        return book.record(call) if call is not None else None

    def knows(self, linkedid: str) -> bool:
        """Whether an event of this Linkedid (or of a call it became) was seen and is still kept."""
        return self._book.aliases.get(linkedid, linkedid) in self._book.calls

    def find_by_uniqueid(self, uniqueid: str) -> CallRecord | None:
        """The queue call one of whose channels (caller, agent, consultation) has this Uniqueid."""
        book = self._book
        key = book.index.get(uniqueid)
        call = book.calls.get(key) if key is not None else None
        return book.record(call) if call is not None else None

    def evict(self, now: float) -> int:
        """Forget calls ended more than retention_seconds ago, and calls silent for stale_seconds.

        The second rule bounds memory when Hangups never come (lost while AMI
        was disconnected, garbage Linkedids). Call `expire_stale()` first to
        persist the queue calls among them. Returns how many were dropped.
        """
        dropped = [
            call
            for call in self._book.calls.values()
            if (call.ended_at is not None and now - call.ended_at > self._retention)
            or (call.ended_at is None and now - call.last_seen > self._stale)
        ]
        for call in dropped:
            self._book.drop(call)
        return len(dropped)

    def expire_stale(self, now: float) -> list[CallRecord]:
        """End, as partial, the live calls silent for stale_seconds; return the queue calls."""
        stale = [
            call
            for call in self._book.calls.values()
            if call.live and now - call.last_seen > self._stale
        ]
        return self._book.end_unseen(stale, now)

    def asterisk_restarted(self, now: float) -> list[CallRecord]:
        """Every live call is gone and no Hangup will come (facts 47, 49): end them, return them."""
        return self._book.end_all(now)

    # --- event dispatch ---------------------------------------------------

    def _apply(self, event: AmiEvent, name: str, now: float) -> list[CallRecord]:
        if name in QUEUE_EVENTS and (missing := missing_fields(event, QUEUE_EVENT_FIELDS)):
            self.refused_events += 1
            self.last_refusal = f"{name} without {', '.join(missing)}"
            return []
        self._members.learn(event, name)
        if name in ("BlindTransfer", "AttendedTransfer"):
            transfer(self._book, self._members, event, name, now)
            return []
        if name == "QueueEntry":
            self._resync.queue_entry(event, now)
            return []
        if name == "BridgeInfoComplete":
            self._resync.bridge_info_complete(event, now)
            return []
        if name == "CoreShowChannelsComplete":
            return self._resync.reconcile(event, now, self._booted_at)
        book = self._book
        if name in DEST_ALIVE_EVENTS:
            book.dest_channel(event, now)
        uniqueid = event.get("Uniqueid")
        resync = name in RESYNC_EVENTS
        call = book.call_for(
            event.linkedid, uniqueid, now, create=name != "Hangup", from_resync=resync
        )
        if call is None or not uniqueid:
            return []
        channel = book.touch(call, uniqueid, event.get("Channel"), resync=resync)
        if name in QUEUE_EVENTS:
            queue_event(call, event, name, uniqueid, now)
        elif name == "DialBegin":
            dial_begin(call, event)
        elif name == "BridgeEnter":
            bridge_enter(call, channel, event.get("BridgeUniqueid"), now, self._members)
        elif name == "BridgeLeave":
            bridge_leave(call, uniqueid, channel, event.get("BridgeUniqueid"), now)
        elif name == "Hangup":
            return hangup(book, call, uniqueid, channel, now)
        elif name == "Rename":
            channel.name = event.get("Newname") or channel.name
        elif name in LISTED_CHANNEL_EVENTS:
            self._resync.listed_channel(call, event, uniqueid=uniqueid, channel=channel, now=now)
        elif name == "BridgeInfoChannel":
            self._resync.bridge_info_channel(event, uniqueid, channel)
        return []

    def _fully_booted(self, event: AmiEvent, now: float) -> list[CallRecord]:
        """A login. Asterisk booted after the last event we saw: it restarted (fact 49).

        Otherwise it is a reconnect, and the queue calls still live may have
        lost events meanwhile: they become partial.
        """
        self._booted_at = now
        uptime = parse_int(event.get("Uptime"))
        last = self._last_event_at
        if uptime is not None and last is not None and now - uptime > last:
            return self._book.end_all(now)
        for call in self._book.calls.values():
            if call.live and call.q is not None:
                call.partial = True
        return []
