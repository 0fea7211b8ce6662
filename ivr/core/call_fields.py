"""Reading AMI fields and channel names for the call tracker.

AMI hands every value over as text, and a lab capture or a misbehaving PBX can
put anything there: these readers turn a field into a number, a caller id or an
interface, or into None, and never raise, so bad input cannot stop the tracker.
"""

from __future__ import annotations

import math
import re

from ivr.core.domain import AmiEvent, HangupSide

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


def parse_int(value: str) -> int | None:
    """A whole non-negative number, or None for anything else (never raises)."""
    match = _DIGITS.fullmatch(value)
    return int(match.group(1)) if match else None


def parse_duration(value: str) -> int | None:
    """CoreShowChannel `Duration: 00:00:03` in seconds, or None."""
    match = _DURATION.fullmatch(value)
    if match is None:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def round_seconds(value: float) -> int | None:
    if not math.isfinite(value) or value < 0:
        return None
    return int(value + 0.5)


def caller_id(value: str) -> str | None:
    """Empty caller id fields arrive as `<unknown>`; names are kept byte-exact (fact 50)."""
    return None if value in ("", _UNKNOWN_ID) else value


def hangup_reason(value: str) -> HangupSide:
    return _REASONS.get(value.strip().lower(), HangupSide.UNKNOWN)


def channel_key(channel: str) -> str:
    """The interface part of a channel name.

    `Local/agent1@agents-0000000f;1` -> `Local/agent1@agents`.
    """
    return _CHANNEL_SUFFIX.sub("", channel)


def interface_key(interface: str) -> str:
    """A queue member interface without Local dial options.

    `Local/agent1@agents/n` -> `Local/agent1@agents`.
    """
    match = _LOCAL_OPTIONS.match(interface)
    return match.group(1) if match else interface


def partner_name(channel: str) -> str | None:
    """The other half of a Local channel pair (`;1` <-> `;2`), None for other technologies."""
    match = _LOCAL_HALF.match(channel)
    if match is None:
        return None
    return f"{match.group(1)};{'2' if match.group(2) == '1' else '1'}"


def dialed_interface(channel: str, dial_string: str) -> str:
    """The interface a Dial reached, spelled like a queue member interface.

    DialBegin gives `DialString: agent2@agents/n` on `Local/agent2@agents-…;1`,
    so technology + DialString is `Local/agent2@agents/n` (fact 37).
    """
    technology, slash, _ = channel.partition("/")
    if slash and dial_string:
        return f"{technology}/{dial_string}"
    return channel_key(channel)


def missing_fields(event: AmiEvent, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not event.get(name).strip()]
