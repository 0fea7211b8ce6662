"""Call templates cut from the Asterisk 22 captures, adapted to each plan's variant.

A capture (ivr.sim.captures) is one lab call; a plan may differ from it in
ways the lab never recorded: a PJSIP caller instead of a Local one, members
of other technologies (one channel, not a ;1/;2 pair), no setvar options,
the queue's F() option left out. A flow template is the capture re-cast for
one such variant, with the hang-up and restart segments borrowed from other
captures, built once per variant and then only joined with per-call values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

from ivr.sim.capture_catalogue import (
    CAPTURES,
    FIRST_QUEUE,
    HANGUP_DURING_COMMAND,
    HANGUP_WHILE_IDLE,
    RESTART,
    SIP_ENV,
    TRANSFER_QUEUE,
    CaptureInfo,
    capture_for,
)
from ivr.sim.captures import Capture, is_call_event, is_survey_event, parse_capture
from ivr.sim.plan import CallPlan, Flow
from ivr.sim.template_event import (
    AGENT_EXTEN,
    AGENT_IFACE,
    AGENT_NAME,
    AGENT_PEER,
    BRIDGE,
    CALLER_NAME,
    CALLER_NUM,
    CHAN,
    QUEUE,
    STEM,
    UID,
    TemplateEvent,
    TimedEvent,
    Token,
    remap,
    with_literals,
)
from ivr.sim.template_timing import cumulative_times, keep_timed, timed_as_captured
from ivr.sim.transcript import read_agi

# What callers imported from here before the capture parsing moved out.
__all__ = [
    "AGENT_EXTEN",
    "AGENT_IFACE",
    "AGENT_NAME",
    "AGENT_PEER",
    "BRIDGE",
    "CALLER_NAME",
    "CALLER_NUM",
    "CAPTURES",
    "CHAN",
    "FIRST_QUEUE",
    "QUEUE",
    "SETVAR_VARIABLES",
    "STEM",
    "TRANSFER_QUEUE",
    "UID",
    "Capture",
    "CaptureInfo",
    "FlowTemplate",
    "TemplateEvent",
    "TemplateLibrary",
    "TimedEvent",
    "Token",
    "capture_for",
    "is_call_event",
    "is_survey_event",
    "parse_capture",
    "remap",
    "with_literals",
]

#: Channel variables that exist only with setinterfacevar/setqueuevar/setqueueentryvar.
SETVAR_VARIABLES = frozenset(
    {
        "MEMBERINTERFACE",
        "MEMBERNAME",
        "MEMBERCALLS",
        "MEMBERLASTCALL",
        "MEMBERPENALTY",
        "MEMBERDYNAMIC",
        "MEMBERREALTIME",
        "QEHOLDTIME",
        "QEORIGINALPOS",
        "QUEUENAME",
        "QUEUEMAX",
        "QUEUESTRATEGY",
        "QUEUECALLS",
        "QUEUEHOLDTIME",
        "QUEUETALKTIME",
        "QUEUECOMPLETED",
        "QUEUEABANDONED",
        "QUEUESRVLEVEL",
        "QUEUESRVLEVELPERF",
    }
)


@dataclass(frozen=True)
class FlowTemplate:
    """Everything one plan's call replays, already adapted to the plan's variant.

    Role names here are the call's own: `agi_channel` runs the AGI, `phone`
    is its other half (None for a single PJSIP channel), `caller` is the
    channel in the queue, `first` the channel whose Uniqueid is the Linkedid.
    The hang-up and restart segments come from other captures (`borrowed`).
    """

    capture: str
    pre: tuple[TimedEvent, ...]
    agi_start: TemplateEvent | None
    side: tuple[TimedEvent, ...]
    close: tuple[TimedEvent, ...]
    tail: tuple[TimedEvent, ...]
    stems: Mapping[str, str]
    caller: str
    first: str
    agi_channel: str | None
    phone: str | None
    env: tuple[tuple[str, str], ...]
    location: tuple[str, str, str]
    local_agents: tuple[bool, ...]
    hangup_moment: tuple[TimedEvent, ...] = ()
    idle_hangup_moment: tuple[TimedEvent, ...] = ()
    hangup_after: tuple[TimedEvent, ...] = ()
    restart_moment: tuple[TimedEvent, ...] = ()
    restart_after: tuple[TimedEvent, ...] = ()


@dataclass(frozen=True)
class _Variant:
    """How a plan's channels differ from its capture's: halves merged or left out."""

    roles: Mapping[str, str]
    dropped: AbstractSet[str]
    stems: Mapping[str, str]
    derived_pjsip: bool
    filter_setvars: bool

    def keeps(self, event: TemplateEvent) -> bool:
        if event.channel in self.dropped or event.refs & self.dropped:
            return False
        return not (
            self.filter_setvars
            and event.name == "VarSet"
            and event.text("Variable") in SETVAR_VARIABLES
        )

    def adapt(self, events: Iterable[TemplateEvent]) -> list[TemplateEvent]:
        return [remap(e, self.roles) for e in events if self.keeps(e)]


def _variant(capture: Capture, plan: CallPlan, local_agents: tuple[bool, ...]) -> _Variant:
    derived_pjsip = plan.caller_kind == "pjsip" and capture.name != "ami-sip-call-survey.txt"
    roles: dict[str, str] = {}
    dropped: set[str] = set()
    stems = dict(capture.stems)
    if derived_pjsip:
        roles.update({"caller;1": "caller", "caller;2": "caller"})
        dropped.add("caller;1")
        stems["caller"] = "PJSIP/sipp"
    for index, is_local in enumerate(local_agents):
        if not is_local:
            roles.update({f"agent{index};1": f"agent{index}", f"agent{index};2": f"agent{index}"})
            dropped.add(f"agent{index};2")
    filter_setvars = not plan.set_vars and plan.flow is not Flow.BLIND_TRANSFER
    return _Variant(roles, dropped, stems, derived_pjsip, filter_setvars)


class TemplateLibrary:
    """Parses captures on first use and caches per-variant flow templates.

    One per simulated PBX (or shared between several): parsing a capture
    takes a few tens of milliseconds, a flow variant a little more.
    """

    def __init__(self) -> None:
        self._captures: dict[str, Capture] = {}
        self._flows: dict[tuple[object, ...], FlowTemplate] = {}

    def capture(self, name: str) -> Capture:
        if name not in self._captures:
            self._captures[name] = parse_capture(name)
        return self._captures[name]

    def flow(self, plan: CallPlan) -> FlowTemplate:
        local_agents = tuple(agent.is_local for agent in plan.agents[:2])
        key = (
            capture_for(plan),
            plan.caller_kind,
            plan.set_vars,
            plan.agent_leg_survey,
            local_agents,
        )
        if key not in self._flows:
            self._flows[key] = self._build(plan, local_agents)
        return self._flows[key]

    def _build(self, plan: CallPlan, local_agents: tuple[bool, ...]) -> FlowTemplate:
        capture = self.capture(capture_for(plan))
        variant = _variant(capture, plan, local_agents)
        base = self._before_agi(capture, variant, local_agents)
        if capture.agi_index is None:
            return base
        return self._with_agi(plan, capture, variant, base)

    def _before_agi(
        self, capture: Capture, variant: _Variant, local_agents: tuple[bool, ...]
    ) -> FlowTemplate:
        """The template of a call that never reaches the survey (or its part before it)."""
        events = capture.events
        end = capture.agi_index if capture.agi_index is not None else len(events)
        pre_events = events[:end]
        totals = cumulative_times(pre_events)
        pre = tuple(
            replace(t, event=remap(t.event, variant.roles))
            for t in keep_timed(pre_events, totals, variant.keeps)
        )
        derived_pjsip = variant.derived_pjsip
        caller = "caller" if derived_pjsip or "caller;2" not in _all_roles(capture) else "caller;2"
        first = "caller" if caller == "caller" else "caller;1"
        env = self.capture_env(capture, derived_pjsip)
        return FlowTemplate(
            capture=capture.name,
            pre=pre,
            agi_start=None,
            side=(),
            close=(),
            tail=(),
            stems=variant.stems,
            caller=caller,
            first=first,
            agi_channel=None,
            phone=None,
            env=env,
            location=("", "", ""),
            local_agents=local_agents,
        )

    def _with_agi(
        self, plan: CallPlan, capture: Capture, variant: _Variant, base: FlowTemplate
    ) -> FlowTemplate:
        """`base` completed with the survey's window, the tail, and the borrowed segments."""
        assert capture.agi_index is not None
        parts = capture.split_window()
        side = variant.adapt(parts.side)
        close = variant.adapt(parts.close)
        tail = variant.adapt(capture.tail())
        agi_start = remap(capture.events[capture.agi_index], variant.roles)
        agi_channel = agi_start.channel
        assert agi_channel is not None
        if plan.flow is Flow.CALLER_HANGS_UP_BRIDGED and not plan.agent_leg_survey:
            return self._without_agent_leg(base, agi_channel, side, close, tail)
        phone = _phone_of(agi_channel, variant.dropped)
        location = (
            agi_start.text("Context"),
            agi_start.text("Exten"),
            agi_start.text("Priority"),
        )
        agi_cdrs = [e for e in [*close, *tail] if e.name == "Cdr" and e.channel == agi_channel]
        surveyed = replace(
            base,
            agi_start=agi_start,
            side=timed_as_captured(side),
            close=timed_as_captured(close),
            tail=timed_as_captured(tail),
            agi_channel=agi_channel,
            phone=phone,
            location=location,
        )
        return self._with_borrowed(surveyed, agi_channel, phone, agi_cdrs)

    def _with_borrowed(
        self,
        template: FlowTemplate,
        agi_channel: str,
        phone: str | None,
        agi_cdrs: Sequence[TemplateEvent],
    ) -> FlowTemplate:
        """The hang-up and restart segments, cut from their own captures for this call."""
        aliases = {"caller;2": agi_channel, "caller;1": phone or agi_channel}
        borrowed_drop = {"caller;1"} if phone is None else set()
        return replace(
            template,
            hangup_moment=self._borrow(
                HANGUP_DURING_COMMAND, aliases=aliases, dropped=borrowed_drop, part="moment"
            ),
            idle_hangup_moment=self._borrow(
                HANGUP_WHILE_IDLE, aliases=aliases, dropped=borrowed_drop, part="moment"
            ),
            hangup_after=self._borrow(
                HANGUP_DURING_COMMAND,
                aliases=aliases,
                dropped=borrowed_drop,
                part="tail",
                agi_channel=agi_channel,
                cdrs=agi_cdrs,
            ),
            restart_moment=self._borrow(
                RESTART, aliases=aliases, dropped=borrowed_drop, part="moment"
            ),
            restart_after=self._borrow(
                RESTART,
                aliases=aliases,
                dropped=borrowed_drop,
                part="tail",
                agi_channel=agi_channel,
                cdrs=agi_cdrs,
            ),
        )

    def capture_env(self, capture: Capture, derived_pjsip: bool) -> tuple[tuple[str, str], ...]:
        if derived_pjsip and capture.env:
            return tuple(read_agi(SIP_ENV).environment)
        return capture.env

    def _borrow(
        self,
        name: str,
        *,
        aliases: Mapping[str, str],
        dropped: set[str],
        part: str,
        agi_channel: str | None = None,
        cdrs: Sequence[TemplateEvent] = (),
    ) -> tuple[TimedEvent, ...]:
        """A segment of another capture, re-cast onto this call's AGI channel and phone."""
        source = self.capture(name)
        events = source.split_window().moment if part == "moment" else source.tail()
        kept = [remap(e, aliases, borrowed=True) for e in events if e.channel not in dropped]
        if agi_channel is not None:
            replaced: list[TemplateEvent] = []
            inserted = False
            for event in kept:
                if event.name == "Cdr" and event.channel == agi_channel:
                    if not inserted:
                        replaced.extend(cdrs)
                        inserted = True
                    continue
                replaced.append(event)
            kept = replaced
        return timed_as_captured(kept)

    def _without_agent_leg(
        self,
        base: FlowTemplate,
        agi_channel: str,
        side: Sequence[TemplateEvent],
        close: Sequence[TemplateEvent],
        tail: Sequence[TemplateEvent],
    ) -> FlowTemplate:
        """Queue option F left out: the member's leg hangs up instead of entering the survey.

        Not captured. Built from the F() capture by dropping the member leg's
        survey-context Newexten and AGISTATUS, and putting that leg back in
        its queue context (agents,s,1) for the teardown events.
        """

        def survey_step(event: TemplateEvent) -> bool:
            return (
                event.channel == agi_channel
                and event.name in ("Newexten", "VarSet")
                and (event.text("Context") == "survey" or event.text("Variable") == "AGISTATUS")
            )

        def home(event: TemplateEvent) -> TemplateEvent:
            if event.channel == agi_channel and event.text("Context") == "survey":
                values = {"Context": "agents", "Exten": "s"}
                if event.has("Priority"):
                    values["Priority"] = "1"
                return with_literals(event, values)
            return event

        pre = tuple(t for t in base.pre if not survey_step(t.event))
        rest = [home(e) for e in [*side, *close, *tail] if not survey_step(e)]
        timed = list(timed_as_captured(rest))
        if timed:
            timed[0] = replace(timed[0], fixed=0.0)
        close_start = len(side)
        if 0 < close_start < len(timed):
            timed[close_start] = replace(timed[close_start], fixed=0.0)
        return replace(base, pre=pre + tuple(timed))


def _all_roles(capture: Capture) -> set[str]:
    roles: set[str] = set()
    for event in capture.events:
        roles |= event.refs
    return roles


def _phone_of(agi_channel: str, dropped: AbstractSet[str]) -> str | None:
    base, _, half = agi_channel.partition(";")
    if not half:
        return None
    other = f"{base};{'2' if half == '1' else '1'}"
    return None if other in dropped else other
