"""The AMI event names the call tracker sorts events by.

Kept together because `tests/admin/test_dialplan.py` checks the account's
event filters against the names the tracker reads: one place to look when a
filter or a rule changes.
"""

from __future__ import annotations

QUEUE_EVENTS = frozenset(
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
DEST_ALIVE_EVENTS = frozenset({"DialBegin", "AgentCalled", "AgentConnect"})
MEMBER_EVENTS = frozenset(
    {"QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause", "QueueMemberPenalty"}
)
# What every queue event of a real Asterisk carries (each of the 108 in the
# captures of ivr/sim/transcripts/). One without them cannot be a call's: it
# must not start one, or junk would be stored as queue calls.
QUEUE_EVENT_FIELDS = ("Queue", "Channel", "Uniqueid", "Linkedid")
LISTED_CHANNEL_EVENTS = frozenset({"CoreShowChannel", "Status"})
RESYNC_EVENTS = LISTED_CHANNEL_EVENTS | {"BridgeInfoChannel"}
