"""A captured event with the values that identify its call made holes (tokens).

Kept apart from the parsing so the replay (ivr.sim.call) depends only on the
shape of a template, not on how captures are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from ivr.sim.plan import CallPlan

UID = "uid"
CHAN = "chan"
STEM = "stem"
BRIDGE = "bridge"
QUEUE = "queue"
AGENT_NAME = "agent_name"
AGENT_IFACE = "agent_iface"
AGENT_PEER = "agent_peer"
AGENT_EXTEN = "agent_exten"
CALLER_NUM = "caller_num"
CALLER_NAME = "caller_name"


class Token(NamedTuple):
    """A hole in a captured value: what kind of identifier, and whose."""

    kind: str
    key: str


Value = tuple[str | Token, ...]


@dataclass(frozen=True, slots=True)
class TemplateEvent:
    """One captured event with its identifying values turned into tokens.

    `channel` is the role in the `Channel` header; `refs` every role that is
    the whole value of some header (used to drop the events of a channel that
    a variant does not have, e.g. the ;1 half for a PJSIP caller).
    `borrowed` marks events taken from another capture than the call's own:
    their channel snapshot is refreshed from the live state when replayed.

    `keys` and `literals` are derived once, because a replay renders every
    event of every call: `keys` are the header names in order (what decides
    how a value is recomputed), `literals` each value already joined when it
    has no hole in it (None where it has one).
    """

    name: str
    headers: tuple[tuple[str, Value], ...]
    at: float
    channel: str | None
    refs: frozenset[str]
    borrowed: bool = False
    keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    literals: tuple[str | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(key for key, _ in self.headers))
        object.__setattr__(self, "literals", tuple(_literal(parts) for _, parts in self.headers))

    def text(self, name: str) -> str:
        """A header with its tokens shown as `<kind:key>`: for classifying, not for the wire."""
        for key, value in self.headers:
            if key == name:
                return "".join(p if isinstance(p, str) else f"<{p.kind}:{p.key}>" for p in value)
        return ""

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.headers)


def _literal(parts: Value) -> str | None:
    """The value itself when it has no hole, else None."""
    texts = [part for part in parts if isinstance(part, str)]
    return "".join(texts) if len(texts) == len(parts) else None


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event and the virtual time since the previous one.

    The gap is `fixed + hold * plan.hold_seconds + talk * plan.talk_seconds`:
    inside a hold (QueueCallerJoin → AgentConnect/QueueCallerAbandon) or talk
    (AgentConnect → AgentComplete) stretch the captured gaps are rescaled so
    the stretch lasts exactly the plan's seconds; elsewhere they are kept.
    """

    event: TemplateEvent
    fixed: float
    hold: float = 0.0
    talk: float = 0.0

    def gap(self, plan: CallPlan) -> float:
        return self.fixed + self.hold * plan.hold_seconds + self.talk * plan.talk_seconds


def remap(event: TemplateEvent, roles: Mapping[str, str], borrowed: bool = False) -> TemplateEvent:
    """The same event with channel roles renamed (tokens, `channel` and `refs`)."""

    def role(name: str) -> str:
        return roles.get(name, name)

    def part(piece: str | Token) -> str | Token:
        if isinstance(piece, Token) and piece.kind in (UID, CHAN, STEM):
            return Token(piece.kind, role(piece.key))
        return piece

    headers = tuple((key, tuple(part(p) for p in value)) for key, value in event.headers)
    channel = None if event.channel is None else role(event.channel)
    refs = frozenset(role(r) for r in event.refs)
    return TemplateEvent(event.name, headers, event.at, channel, refs, borrowed or event.borrowed)


def with_literals(event: TemplateEvent, values: Mapping[str, str]) -> TemplateEvent:
    """The same event with some headers set to literal values."""
    headers = tuple(
        (key, (values[key],) if key in values else value) for key, value in event.headers
    )
    return replace(event, headers=headers)
