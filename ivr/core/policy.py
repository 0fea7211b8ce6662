"""Whether a FastAGI request should be surveyed at all.

Pure, so every rule is a table test: the route reads the caller's history
from the database beforehand (`PolicyHistory`) and passes the clock in.

Precedence (the first rule that refuses gives the reason):

0. already_surveyed - this call has (or is having) its survey: a second request
   (a transfer hook, the dialplan going on after `Queue()`) ends before ANSWER.
   It is never stored: the call keeps the decision of its first request.
1. agent_leg      - the request comes from an agent's channel: never survey staff.
2. abandoned      - nobody answered the caller; there is nothing to rate.
3. opted_out      - the caller asked to be left alone; that outranks every setting.
4. excluded_queue - configuration about the call itself, cheapest first ...
5. excluded_agent
6. transferred
7. short_talk
8. outside_hours  - ... then the clock ...
9. cooldown       - ... then what the database says about this caller and queue.
10. queue_cap
11. sampled_out   - last, so `sample_percent` is a share of otherwise-eligible calls.

Definitive facts come before settings, so the stored reason says the most
important thing about a call (an opted-out caller is "opted_out" whatever
the hour), and the reports can count each reason as a funnel step.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.core.domain import CallRecord


class Reason(enum.StrEnum):
    """Why a request was or was not surveyed; stored as text in `calls.policy_decision`."""

    ELIGIBLE = "eligible"
    ALREADY_SURVEYED = "already_surveyed"
    AGENT_LEG = "agent_leg"
    ABANDONED = "abandoned"
    OPTED_OUT = "opted_out"
    EXCLUDED_QUEUE = "excluded_queue"
    EXCLUDED_AGENT = "excluded_agent"
    OUTSIDE_HOURS = "outside_hours"
    TRANSFERRED = "transferred"
    SHORT_TALK = "short_talk"
    COOLDOWN = "cooldown"
    QUEUE_CAP = "queue_cap"
    SAMPLED_OUT = "sampled_out"


@dataclass(frozen=True, slots=True)
class Decision:
    survey: bool
    reason: Reason


ELIGIBLE = Decision(survey=True, reason=Reason.ELIGIBLE)


@dataclass(frozen=True, slots=True)
class PolicyHistory:
    """What the database knew about this caller and queue when the request came.

    `last_surveyed_at`: the caller's latest survey start on any PBX, this call
    excluded (a replayed request must not cool itself down). `queue_surveys_today`:
    surveys this call's queue started since the policy day began, this call excluded.
    `this_call_surveyed`: this very call already has a survey, stored or in progress.
    """

    last_surveyed_at: datetime | None = None
    queue_surveys_today: int = 0
    opted_out: bool = False
    this_call_surveyed: bool = False


NO_HISTORY = PolicyHistory()


@dataclass(frozen=True, slots=True)
class HistoryNeeds:
    """What `decide` will look at in the history, so the read fetches only that.

    The history is read while the caller waits, and the parts a rule does not
    use are the costly ones: a frequent caller's every survey, a busy queue's
    every survey of the day. `cooldown`: read the caller's latest survey.
    `cap`: count the queue's surveys since `day_start`, but only up to `cap`
    (0: not at all), since `decide` only asks whether the cap is reached.
    The opt-out list is always read: it outranks every setting.
    """

    day_start: datetime
    cooldown: bool = False
    cap: int = 0


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^(?P<hour>\d{1,2}):(?P<minute>\d{2})$")
_END_OF_DAY = time(23, 59, 59, 999999)


@dataclass(frozen=True, slots=True)
class OpenSpan:
    """Open from `start` (included) to `end` (excluded) on weekday `day` (0 = Monday)."""

    day: int
    start: time
    end: time
    until_midnight: bool = False

    def contains(self, moment: time) -> bool:
        if moment < self.start:
            return False
        return self.until_midnight or moment < self.end


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Local opening hours; no spans at all means always open."""

    spans: tuple[OpenSpan, ...] = ()

    def is_open(self, local: datetime) -> bool:
        if not self.spans:
            return True
        moment = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        return any(span.day == weekday and span.contains(moment) for span in self.spans)


def parse_hours(spec: str) -> BusinessHours:
    """Parse `mon-fri 08:00-18:00; sat 09:00-13:00`; raise ValueError naming the bad part.

    Entries are separated by `;`. Each is days (`mon`, `mon-fri`, `sat,sun`,
    `fri-mon` wraps round the week) then one or more `HH:MM-HH:MM` ranges in
    local wall-clock time; `24:00` ends a range at midnight. A range must end
    after it starts: a night shift is written as two entries.
    """
    spans: list[OpenSpan] = []
    for entry in (part.strip() for part in spec.split(";")):
        if not entry:
            continue
        days_text, _, ranges_text = entry.replace("\t", " ").partition(" ")
        if not ranges_text.strip():
            raise ValueError(f"{entry!r}: expected days then times, like 'mon-fri 08:00-18:00'")
        days = _parse_days(days_text, entry)
        for span_text in re.split(r"[\s,]+", ranges_text.strip()):
            start, end, until_midnight = _parse_range(span_text, entry)
            spans.extend(OpenSpan(day, start, end, until_midnight) for day in days)
    return BusinessHours(tuple(spans))


def _parse_days(text: str, entry: str) -> tuple[int, ...]:
    days: list[int] = []
    for item in text.lower().split(","):
        first, dash, last = item.partition("-")
        if first not in _DAYS or (dash and last not in _DAYS):
            raise ValueError(
                f"{entry!r}: {item!r} is not a day or day range (mon tue wed thu fri sat sun)"
            )
        start = _DAYS.index(first)
        stop = _DAYS.index(last) if dash else start
        count = (stop - start) % 7 + 1
        days.extend((start + offset) % 7 for offset in range(count))
    return tuple(days)


def _parse_range(text: str, entry: str) -> tuple[time, time, bool]:
    first, dash, last = text.partition("-")
    start = _parse_clock(first, entry, allow_midnight=False)
    end = _parse_clock(last, entry, allow_midnight=True) if dash else None
    if start is None or end is None:
        raise ValueError(f"{entry!r}: {text!r} is not a time range like 08:00-18:00")
    until_midnight = end == _END_OF_DAY
    if not until_midnight and end <= start:
        raise ValueError(
            f"{entry!r}: {text!r} ends before it starts (split a night shift in two entries)"
        )
    return start, end, until_midnight


def _parse_clock(text: str, entry: str, *, allow_midnight: bool) -> time | None:
    match = _CLOCK.match(text)
    if match is None:
        return None
    hour, minute = int(match["hour"]), int(match["minute"])
    if allow_midnight and (hour, minute) == (24, 0):
        return _END_OF_DAY
    if hour > 23 or minute > 59:
        raise ValueError(f"{entry!r}: {text!r} is not a time of day")
    return time(hour, minute)


def parse_caps(text: str) -> dict[str, int]:
    """Parse `queue:N, queue:N` (per-queue daily caps); raise ValueError naming the entry."""
    caps: dict[str, int] = {}
    for entry in (part for part in re.split(r"[\s,]+", text.strip()) if part):
        queue, colon, number = entry.rpartition(":")
        if not colon or not queue or not number.isdigit():
            raise ValueError(f"{entry!r} is not queue:N with N a whole number >= 0")
        caps[queue] = int(number)
    return caps


def parse_names(text: str) -> frozenset[str]:
    """A comma separated list of queue or agent names (agent names hold spaces)."""
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def parse_zone(name: str) -> ZoneInfo:
    """The IANA time zone; raise ValueError with the name when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{name!r} is not an IANA time zone (like Europe/Madrid)") from error


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """The survey policy as a pure value; the defaults survey every call.

    Agent lists match the last agent's name or interface. An empty include
    list means every queue (agent). A cap of 0 means no cap.
    """

    sample_percent: float = 100.0
    min_talk_seconds: int = 0
    cooldown: timedelta = timedelta(0)
    daily_cap: int = 0
    daily_caps: Mapping[str, int] = field(default_factory=dict)
    include_queues: frozenset[str] = frozenset()
    exclude_queues: frozenset[str] = frozenset()
    include_agents: frozenset[str] = frozenset()
    exclude_agents: frozenset[str] = frozenset()
    hours: BusinessHours = BusinessHours()
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    exclude_transferred: bool = False

    def cap_for(self, queue: str | None) -> int:
        if queue is None:
            return 0
        return self.daily_caps.get(queue, self.daily_cap)

    def day_start(self, now: datetime) -> datetime:
        """Midnight of `now`'s day in the policy zone, in UTC (the daily caps' window)."""
        local = now.astimezone(self.zone)
        return datetime.combine(local.date(), time(0), tzinfo=self.zone).astimezone(UTC)

    def history_needed(self, queue: str | None, now: datetime) -> HistoryNeeds:
        """What these rules read of the past for a call in `queue` at `now`."""
        return HistoryNeeds(
            day_start=self.day_start(now),
            cooldown=self.cooldown > timedelta(0),
            cap=self.cap_for(queue),
        )


SURVEY_EVERY_CALL = PolicyRules()


def sample_point(pbx: str, linkedid: str) -> float:
    """A call's fixed place in [0, 1): the same call always gets the same answer."""
    digest = hashlib.sha256(f"{pbx}\0{linkedid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(
    call: CallRecord,
    agi_channel: str,
    agi_uniqueid: str,
    *,
    history: PolicyHistory,
    rules: PolicyRules,
    now: datetime,
) -> Decision:
    """Apply the rules in the precedence order of the module docstring.

    Queue option F() sends the *agent's* leg to the survey when the caller hangs
    up (fact 15): the request then names the agent's member channel. Scoring
    that would credit an agent with their own opinion of themselves.
    A talk time not yet known (a record rebuilt from channel variables) does not
    refuse: the rule is about short calls, and this one may not be.
    """
    if history.this_call_surveyed:
        return _refuse(Reason.ALREADY_SURVEYED)
    if any(leg.channel and leg.channel == agi_channel for leg in call.agents):
        return _refuse(Reason.AGENT_LEG)
    if call.abandoned and not call.agents:
        return _refuse(Reason.ABANDONED)
    if history.opted_out:
        return _refuse(Reason.OPTED_OUT)
    if not _selected(call.queue, rules.include_queues, rules.exclude_queues):
        return _refuse(Reason.EXCLUDED_QUEUE)
    if not _agent_selected(call, rules):
        return _refuse(Reason.EXCLUDED_AGENT)
    if rules.exclude_transferred and call.transferred:
        return _refuse(Reason.TRANSFERRED)
    if call.talk_seconds is not None and call.talk_seconds < rules.min_talk_seconds:
        return _refuse(Reason.SHORT_TALK)
    if not rules.hours.is_open(now.astimezone(rules.zone)):
        return _refuse(Reason.OUTSIDE_HOURS)
    if (
        rules.cooldown > timedelta(0)
        and history.last_surveyed_at is not None
        and now - history.last_surveyed_at < rules.cooldown
    ):
        return _refuse(Reason.COOLDOWN)
    cap = rules.cap_for(call.queue)
    if cap > 0 and history.queue_surveys_today >= cap:
        return _refuse(Reason.QUEUE_CAP)
    if sample_point(call.pbx, call.linkedid) * 100 >= rules.sample_percent:
        return _refuse(Reason.SAMPLED_OUT)
    return ELIGIBLE


def _refuse(reason: Reason) -> Decision:
    return Decision(survey=False, reason=reason)


def _selected(name: str | None, include: frozenset[str], exclude: frozenset[str]) -> bool:
    if include and name not in include:
        return False
    return name is None or name not in exclude


def _agent_selected(call: CallRecord, rules: PolicyRules) -> bool:
    agent = call.last_agent
    names = {agent.name, agent.interface} if agent is not None else set()
    if rules.include_agents and not names & rules.include_agents:
        return False
    return not names & rules.exclude_agents
