"""The list actions a listener resyncs with, shaped like ami-resync-actions.txt.

Each builder returns the response's events (items, then the `*Complete`
event) from the live `PbxState`. Field names and order are copied from the
capture and from ami-least-privilege-listener.txt (BridgeList/BridgeInfo);
where `ActionID` sits differs per event type, exactly as Asterisk does it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.sim.state import (
    STATUS_NOT_INUSE,
    ChannelState,
    MemberState,
    PbxState,
    QueueState,
    read_variable,
)

Header = tuple[str, str]
Message = list[Header]


def _id(action_id: str | None) -> list[Header]:
    return [] if action_id is None else [("ActionID", action_id)]


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _complete(name: str, action_id: str | None, count: int) -> Message:
    return [
        ("Event", name),
        *_id(action_id),
        ("EventList", "Complete"),
        ("ListItems", str(count)),
    ]


def queue_status(
    state: PbxState, action_id: str | None, queue: str = "", member: str = ""
) -> list[Message]:
    items: list[Message] = []
    for name, known in state.queues.items():
        if queue and name != queue:
            continue
        items.append(_queue_params(name, known, action_id))
        items.extend(
            _queue_member(name, entry, action_id)
            for entry in known.members.values()
            if not member or member in (entry.name, entry.interface)
        )
        items.extend(_queue_entries(state, name, known, action_id))
    return [*items, _complete("QueueStatusComplete", action_id, len(items))]


def _queue_params(name: str, known: QueueState, action_id: str | None) -> Message:
    return [
        ("Event", "QueueParams"),
        ("Queue", name),
        ("Max", "0"),
        ("Strategy", "ringall"),
        ("Calls", str(len(known.waiting))),
        ("Holdtime", str(known.holdtime)),
        ("TalkTime", str(known.talktime)),
        ("Completed", str(known.completed)),
        ("Abandoned", str(known.abandoned)),
        ("ServiceLevel", "0"),
        ("ServicelevelPerf", "0.0"),
        ("ServicelevelPerf2", "0.0"),
        ("Weight", "0"),
        *_id(action_id),
    ]


def _queue_member(name: str, entry: MemberState, action_id: str | None) -> Message:
    return [
        ("Event", "QueueMember"),
        ("Queue", name),
        ("Name", entry.name),
        ("Location", entry.interface),
        ("StateInterface", entry.interface),
        ("Membership", "static"),
        ("Penalty", "0"),
        ("CallsTaken", str(entry.calls_taken)),
        ("LastCall", str(entry.last_call)),
        ("LastPause", "0"),
        ("LoginTime", str(entry.login_time)),
        ("InCall", str(entry.in_call)),
        ("Status", str(entry.status)),
        ("Paused", "0"),
        ("PausedReason", ""),
        ("Wrapuptime", "0"),
        *_id(action_id),
    ]


def _queue_entries(
    state: PbxState, name: str, known: QueueState, action_id: str | None
) -> list[Message]:
    """The callers still waiting, in queue order; a channel gone meanwhile is skipped."""
    entries: list[Message] = []
    for position, (channel_name, (joined, clock)) in enumerate(known.waiting.items(), 1):
        channel = state.channel(channel_name)
        if channel is None:
            continue
        snapshot = channel.snapshot
        entries.append(
            [
                ("Event", "QueueEntry"),
                ("Queue", name),
                ("Position", str(position)),
                ("Channel", channel_name),
                ("Uniqueid", channel.uniqueid),
                ("CallerIDNum", snapshot.get("CallerIDNum", "")),
                ("CallerIDName", snapshot.get("CallerIDName", "")),
                ("ConnectedLineNum", snapshot.get("ConnectedLineNum", "")),
                ("ConnectedLineName", snapshot.get("ConnectedLineName", "")),
                ("Wait", str(int(max(0.0, clock.now() - joined)))),
                ("Priority", "0"),
                *_id(action_id),
            ]
        )
    return entries


def queue_summary(state: PbxState, action_id: str | None, queue: str = "") -> list[Message]:
    items: list[Message] = []
    for name, known in state.queues.items():
        if queue and name != queue:
            continue
        waits = [clock.now() - joined for joined, clock in known.waiting.values()]
        available = sum(
            1 for m in known.members.values() if m.status == STATUS_NOT_INUSE and not m.in_call
        )
        items.append(
            [
                ("Event", "QueueSummary"),
                ("Queue", name),
                ("LoggedIn", str(len(known.members))),
                ("Available", str(available)),
                ("Callers", str(len(known.waiting))),
                ("HoldTime", str(known.holdtime)),
                ("TalkTime", str(known.talktime)),
                ("LongestHoldTime", str(int(max(waits, default=0.0)))),
                *_id(action_id),
            ]
        )
    return [*items, _complete("QueueSummaryComplete", action_id, len(items))]


def core_show_channels(state: PbxState, action_id: str | None) -> list[Message]:
    items: list[Message] = [
        [
            ("Event", "CoreShowChannel"),
            *_id(action_id),
            *channel.headers(),
            ("Application", channel.application),
            ("ApplicationData", channel.data),
            ("Duration", _clock(channel.age())),
            ("BridgeId", channel.bridge),
        ]
        for channel in state.channels.values()
    ]
    return [*items, _complete("CoreShowChannelsComplete", action_id, len(items))]


def _status_item(channel: ChannelState, action_id: str | None, variables: Sequence[str]) -> Message:
    snapshot = channel.snapshot
    pjsip = channel.technology == "PJSIP"
    return [
        ("Event", "Status"),
        ("Privilege", "Call"),
        *channel.headers(),
        ("Type", channel.technology),
        ("DNID", ""),
        ("EffectiveConnectedLineNum", snapshot.get("ConnectedLineNum", "")),
        ("EffectiveConnectedLineName", snapshot.get("ConnectedLineName", "")),
        ("TimeToHangup", "0"),
        ("BridgeID", channel.bridge),
        ("Application", channel.application),
        ("Data", channel.data),
        ("Nativeformats", "(ulaw)" if pjsip else "(slin)"),
        ("Readformat", "ulaw" if pjsip else "slin"),
        ("Readtrans", ""),
        ("Writeformat", "ulaw" if pjsip else "slin"),
        ("Writetrans", ""),
        ("Callgroup", "0"),
        ("Pickupgroup", "0"),
        ("Seconds", str(int(channel.age()))),
        *[("Variable", f"{name}={read_variable(channel, name) or ''}") for name in variables],
        *_id(action_id),
    ]


def status(
    state: PbxState, action_id: str | None, channel: str = "", variables: str = ""
) -> list[Message] | None:
    """None when a named channel does not exist (the caller answers `No such channel`)."""
    names = [v.strip() for v in variables.split(",") if v.strip()]
    if channel:
        found = state.channel(channel)
        if found is None:
            return None
        chosen = [found]
    else:
        chosen = list(state.channels.values())
    items = [_status_item(c, action_id, names) for c in chosen]
    complete = _complete("StatusComplete", action_id, len(items))
    complete.append(("Items", str(len(items))))
    return [*items, complete]


def bridge_list(state: PbxState, action_id: str | None, bridge_type: str = "") -> list[Message]:
    items: list[Message] = [
        [("Event", "BridgeListItem"), *_id(action_id), *bridge.headers()]
        for bridge in state.bridges.values()
        if not bridge_type or bridge.type == bridge_type
    ]
    return [*items, _complete("BridgeListComplete", action_id, len(items))]


def bridge_info(state: PbxState, action_id: str | None, bridge_id: str) -> list[Message] | None:
    bridge = state.bridges.get(bridge_id)
    if bridge is None:
        return None
    items: list[Message] = []
    for name in bridge.channels:
        channel = state.channel(name)
        if channel is not None:
            items.append([("Event", "BridgeInfoChannel"), *_id(action_id), *channel.headers()])
    complete = _complete("BridgeInfoComplete", action_id, len(items))
    complete.extend(bridge.headers())
    return [*items, complete]
