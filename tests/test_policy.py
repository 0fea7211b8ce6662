"""Which AGI requests are surveyed, as tables: (call, history, rules, now) -> decision."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest

from ivr.core.domain import AgentLeg, CallRecord
from ivr.core.policy import (
    NO_HISTORY,
    SURVEY_EVERY_CALL,
    BusinessHours,
    Decision,
    PolicyHistory,
    PolicyRules,
    Reason,
    decide,
    parse_caps,
    parse_hours,
    sample_point,
)

AGENT_ONE = AgentLeg(
    name="Agent One",
    interface="Local/agent1@agents/n",
    queue="support",
    channel="Local/agent1@agents-00000005;1",
    connected_at=0.0,
)
CALLER_CHANNEL = "Local/s@callers-00000004;2"
CALL = CallRecord(
    pbx="pbx1",
    linkedid="1795329453.8",
    caller_uniqueid="1795329453.9",
    caller_channel=CALLER_CHANNEL,
    caller_number="+15550001111",
    queue="support",
    agents=(AGENT_ONE,),
    talk_seconds=95,
)
# Wednesday 2026-11-18 10:00 UTC.
WEDNESDAY = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = parse_hours("mon-fri 08:00-18:00; sat 09:00-13:00")


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def rules(**fields: object) -> PolicyRules:
    return dataclasses.replace(
        SURVEY_EVERY_CALL,
        **fields,  # type: ignore[arg-type]  # **fields: PolicyRules fields, by name
    )


def call(**fields: object) -> CallRecord:
    return dataclasses.replace(
        CALL,
        **fields,  # type: ignore[arg-type]  # **fields: CallRecord fields, by name
    )


def linkedid_sampled(percent: float, inside: bool) -> str:
    """A Linkedid whose fixed sample point falls inside (or outside) `percent`."""
    for number in range(10_000):
        linkedid = f"1795329453.{number}"
        if (sample_point("pbx1", linkedid) * 100 < percent) == inside:
            return linkedid
    raise AssertionError("no such Linkedid")


def refused(reason: Reason) -> Decision:
    return Decision(survey=False, reason=reason)


ELIGIBLE = Decision(survey=True, reason=Reason.ELIGIBLE)
OPTED_OUT = PolicyHistory(opted_out=True)


class Case(NamedTuple):
    name: str
    call: CallRecord
    channel: str
    history: PolicyHistory
    rules: PolicyRules
    now: datetime
    expected: Decision


ROWS = [
    ("caller leg", CALL, CALLER_CHANNEL, NO_HISTORY, SURVEY_EVERY_CALL, WEDNESDAY, ELIGIBLE),
    (
        "agent leg via F()",
        CALL,
        "Local/agent1@agents-00000005;1",
        NO_HISTORY,
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        refused(Reason.AGENT_LEG),
    ),
    (
        "unknown call from channel data",
        CallRecord(pbx="pbx1", linkedid="1.1", partial=True),
        "PJSIP/sipp-00000001",
        NO_HISTORY,
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "abandoned",
        CallRecord(pbx="pbx1", linkedid="1.1", abandoned=True),
        "PJSIP/sipp-00000001",
        NO_HISTORY,
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        refused(Reason.ABANDONED),
    ),
    (
        "opted out",
        CALL,
        CALLER_CHANNEL,
        OPTED_OUT,
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        refused(Reason.OPTED_OUT),
    ),
    (
        "this call already surveyed outranks everything",
        CALL,
        "Local/agent1@agents-00000005;1",
        PolicyHistory(opted_out=True, this_call_surveyed=True),
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        refused(Reason.ALREADY_SURVEYED),
    ),
    (
        "agent leg outranks opt-out",
        CALL,
        "Local/agent1@agents-00000005;1",
        OPTED_OUT,
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        refused(Reason.AGENT_LEG),
    ),
    (
        "opt-out outranks every setting",
        CALL,
        CALLER_CHANNEL,
        OPTED_OUT,
        rules(exclude_queues=frozenset({"support"}), sample_percent=0.0),
        WEDNESDAY,
        refused(Reason.OPTED_OUT),
    ),
    (
        "queue excluded",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(exclude_queues=frozenset({"support"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_QUEUE),
    ),
    (
        "queue not among the included",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(include_queues=frozenset({"sales"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_QUEUE),
    ),
    (
        "queue among the included",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(include_queues=frozenset({"sales", "support"})),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "no queue known while queues are included",
        call(queue=None),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(include_queues=frozenset({"support"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_QUEUE),
    ),
    (
        "agent excluded by name",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(exclude_agents=frozenset({"Agent One"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_AGENT),
    ),
    (
        "agent excluded by interface",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(exclude_agents=frozenset({"Local/agent1@agents/n"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_AGENT),
    ),
    (
        "agent not among the included",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(include_agents=frozenset({"Agent Two"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_AGENT),
    ),
    (
        "queue rule comes before the agent rule",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(exclude_queues=frozenset({"support"}), exclude_agents=frozenset({"Agent One"})),
        WEDNESDAY,
        refused(Reason.EXCLUDED_QUEUE),
    ),
    (
        "transferred and excluded",
        call(transferred=True),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(exclude_transferred=True),
        WEDNESDAY,
        refused(Reason.TRANSFERRED),
    ),
    (
        "transferred, allowed by default",
        call(transferred=True),
        CALLER_CHANNEL,
        NO_HISTORY,
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "talk shorter than the minimum",
        call(talk_seconds=29),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(min_talk_seconds=30),
        WEDNESDAY,
        refused(Reason.SHORT_TALK),
    ),
    (
        "talk exactly the minimum",
        call(talk_seconds=30),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(min_talk_seconds=30),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "talk time unknown does not refuse",
        call(talk_seconds=None),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(min_talk_seconds=30),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "inside office hours (11:00 Berlin)",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=OFFICE, zone=BERLIN),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "after closing (18:00 Berlin is the end, excluded)",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=OFFICE, zone=BERLIN),
        datetime(2026, 11, 18, 17, 0, tzinfo=UTC),
        refused(Reason.OUTSIDE_HOURS),
    ),
    (
        "Sunday",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=OFFICE, zone=BERLIN),
        datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        refused(Reason.OUTSIDE_HOURS),
    ),
    (
        "Saturday morning",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=OFFICE, zone=BERLIN),
        datetime(2026, 11, 21, 8, 30, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "empty hours: always open",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=BusinessHours(), zone=BERLIN),
        datetime(2026, 11, 22, 3, 0, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "UTC day differs from the local day (Tue 23:30 UTC is Wed in Tokyo)",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("wed 08:00-09:00"), zone=ZoneInfo("Asia/Tokyo")),
        datetime(2026, 11, 17, 23, 30, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "DST spring forward: 07:30 UTC is 09:30 CEST, open",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("sun 09:00-10:00"), zone=BERLIN),
        datetime(2026, 3, 29, 7, 30, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "DST spring forward: 08:30 UTC is 10:30 CEST (CET would say 09:30), closed",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("sun 09:00-10:00"), zone=BERLIN),
        datetime(2026, 3, 29, 8, 30, tzinfo=UTC),
        refused(Reason.OUTSIDE_HOURS),
    ),
    (
        "DST fall back: first 02:30 (00:30 UTC, CEST) is open",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("sun 02:00-03:00"), zone=BERLIN),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "DST fall back: second 02:30 (01:30 UTC, CET) is open too",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("sun 02:00-03:00"), zone=BERLIN),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "DST fall back: 02:00 UTC is 03:00 CET, closed",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("sun 02:00-03:00"), zone=BERLIN),
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
        refused(Reason.OUTSIDE_HOURS),
    ),
    (
        "open until midnight with 24:00",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("wed 20:00-24:00")),
        datetime(2026, 11, 18, 23, 59, 59, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "week wrapping day range fri-mon covers Sunday",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(hours=parse_hours("fri-mon 00:00-24:00")),
        datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        ELIGIBLE,
    ),
    (
        "surveyed 6 days ago, 7-day cooldown",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(last_surveyed_at=WEDNESDAY - timedelta(days=6)),
        rules(cooldown=timedelta(days=7)),
        WEDNESDAY,
        refused(Reason.COOLDOWN),
    ),
    (
        "surveyed exactly 7 days ago, 7-day cooldown",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(last_surveyed_at=WEDNESDAY - timedelta(days=7)),
        rules(cooldown=timedelta(days=7)),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "surveyed an hour ago, no cooldown set",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(last_surveyed_at=WEDNESDAY - timedelta(hours=1)),
        SURVEY_EVERY_CALL,
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "outside hours outranks cooldown",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(last_surveyed_at=WEDNESDAY),
        rules(cooldown=timedelta(days=7), hours=parse_hours("sat 09:00-10:00")),
        WEDNESDAY,
        refused(Reason.OUTSIDE_HOURS),
    ),
    (
        "queue cap reached",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(queue_surveys_today=50),
        rules(daily_cap=50),
        WEDNESDAY,
        refused(Reason.QUEUE_CAP),
    ),
    (
        "queue cap not yet reached",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(queue_surveys_today=49),
        rules(daily_cap=50),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "per-queue cap overrides the default",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(queue_surveys_today=5),
        rules(daily_cap=50, daily_caps=parse_caps("support:5")),
        WEDNESDAY,
        refused(Reason.QUEUE_CAP),
    ),
    (
        "per-queue cap 0 lifts the default cap",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(queue_surveys_today=500),
        rules(daily_cap=50, daily_caps=parse_caps("support:0")),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "cooldown outranks the cap",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(last_surveyed_at=WEDNESDAY, queue_surveys_today=50),
        rules(daily_cap=50, cooldown=timedelta(days=1)),
        WEDNESDAY,
        refused(Reason.COOLDOWN),
    ),
    (
        "sampled out at 0%",
        CALL,
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(sample_percent=0.0),
        WEDNESDAY,
        refused(Reason.SAMPLED_OUT),
    ),
    (
        "inside a 30% sample",
        call(linkedid=linkedid_sampled(30.0, inside=True)),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(sample_percent=30.0),
        WEDNESDAY,
        ELIGIBLE,
    ),
    (
        "outside a 30% sample",
        call(linkedid=linkedid_sampled(30.0, inside=False)),
        CALLER_CHANNEL,
        NO_HISTORY,
        rules(sample_percent=30.0),
        WEDNESDAY,
        refused(Reason.SAMPLED_OUT),
    ),
    (
        "cap outranks sampling",
        CALL,
        CALLER_CHANNEL,
        PolicyHistory(queue_surveys_today=1),
        rules(daily_cap=1, sample_percent=0.0),
        WEDNESDAY,
        refused(Reason.QUEUE_CAP),
    ),
]


@pytest.mark.parametrize("case", [Case(*row) for row in ROWS], ids=[row[0] for row in ROWS])
def test_decision_follows_the_rules_in_their_precedence(case: Case) -> None:
    """Each row: the first rule (in the documented order) that refuses names the reason."""
    actual = decide(
        case.call,
        case.channel,
        case.call.caller_uniqueid or "",
        history=case.history,
        rules=case.rules,
        now=case.now,
    )
    assert case.expected == actual


def test_sampling_is_the_same_for_a_retried_request_and_about_the_share_asked() -> None:
    """The same (pbx, Linkedid) always gets the same answer; over many calls the
    share surveyed is close to sample_percent."""
    policy = rules(sample_percent=25.0)
    linkedids = [f"1795329453.{number}" for number in range(4000)]
    first = [decide(call(linkedid=x), CALLER_CHANNEL, "", history=NO_HISTORY, rules=policy,
                    now=WEDNESDAY).survey for x in linkedids]  # fmt: skip
    again = [decide(call(linkedid=x), CALLER_CHANNEL, "", history=NO_HISTORY, rules=policy,
                    now=WEDNESDAY).survey for x in linkedids]  # fmt: skip
    share = sum(first) / len(first)
    assert first == again
    assert 0.22 < share < 0.28


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        (WEDNESDAY, "UTC", datetime(2026, 11, 18, 0, 0, tzinfo=UTC)),
        (WEDNESDAY, "Europe/Berlin", datetime(2026, 11, 17, 23, 0, tzinfo=UTC)),
        (utc(2026, 11, 17, 23, 30), "Europe/Berlin", utc(2026, 11, 17, 23)),
        (utc(2026, 3, 29, 12), "Europe/Berlin", utc(2026, 3, 28, 23)),
        (utc(2026, 3, 30, 12), "Europe/Berlin", utc(2026, 3, 29, 22)),
        (utc(2026, 11, 18, 3), "America/New_York", utc(2026, 11, 17, 5)),
    ],
    ids=["UTC", "Berlin winter", "Berlin just after midnight", "DST day starts in CET",
         "day after DST starts in CEST", "New York: UTC morning is still yesterday"],
)  # fmt: skip
def test_the_daily_cap_day_starts_at_local_midnight(
    now: datetime, zone: str, expected: datetime
) -> None:
    """The cap's window starts at midnight in the policy time zone, whatever UTC says."""
    assert expected == rules(zone=ZoneInfo(zone)).day_start(now)


@pytest.mark.parametrize(
    ("fields", "queue", "expected"),
    [
        ({}, "sales", (False, 0)),
        ({"cooldown": timedelta(days=7)}, "sales", (True, 0)),
        ({"daily_cap": 200}, "sales", (False, 200)),
        ({"daily_cap": 200, "daily_caps": {"sales": 50}}, "sales", (False, 50)),
        ({"daily_caps": {"sales": 50}}, "support", (False, 0)),
        ({"daily_cap": 200}, None, (False, 0)),
        ({"cooldown": timedelta(hours=1), "daily_cap": 10}, "sales", (True, 10)),
    ],
    ids=["default policy reads nothing", "cooldown", "cap", "queue's own cap",
         "another queue's cap", "no queue, no cap", "both"],
)  # fmt: skip
def test_the_history_read_asks_only_what_the_rules_use(
    fields: dict[str, object], queue: str | None, expected: tuple[bool, int]
) -> None:
    """The caller waits on the history read: a rule that is off costs nothing."""
    needs = rules(**fields).history_needed(queue, WEDNESDAY)
    assert (*expected, utc(2026, 11, 18, 0)) == (needs.cooldown, needs.cap, needs.day_start)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mon-fry 08:00-18:00", "'mon-fry' is not a day or day range"),
        ("mon-fri", "expected days then times"),
        ("mon-fri 8-18", "'8-18' is not a time range like 08:00-18:00"),
        ("mon 18:00-08:00", "ends before it starts (split a night shift in two entries)"),
        ("mon 08:00-08:00", "ends before it starts"),
        ("mon 25:00-26:00", "'25:00' is not a time of day"),
        ("mon 08:60-09:00", "'08:60' is not a time of day"),
    ],
)
def test_bad_hours_are_refused_naming_the_entry(spec: str, message: str) -> None:
    """A bad hours spec raises with the entry and what is wrong with it."""
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_hours(spec)
    assert str(caught.value).startswith(repr(spec))


@pytest.mark.parametrize(
    ("spec", "expected_open_days"),
    [
        ("", []),
        ("mon-fri 08:00-18:00", [0, 1, 2, 3, 4]),
        ("sat,sun 10:00-12:00", [5, 6]),
        ("fri-mon 10:00-12:00", [4, 5, 6, 0]),
        ("mon 08:00-12:00 13:00-17:00; ; tue 09:00-10:00", [0, 0, 1]),
    ],
)
def test_hours_specs_open_the_days_they_name(spec: str, expected_open_days: list[int]) -> None:
    """Day lists, ranges, wrapping ranges, several ranges a day, empty entries skipped."""
    assert expected_open_days == [span.day for span in parse_hours(spec).spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("sales:50, support:0", {"sales": 50, "support": 0}),
        ("sales:5 vip:queue:2", {"sales": 5, "vip:queue": 2}),
    ],
)
def test_daily_caps_are_read_per_queue(text: str, expected: dict[str, int]) -> None:
    """`queue:N` entries separated by commas or spaces; the last colon splits."""
    assert expected == parse_caps(text)


@pytest.mark.parametrize("text", ["sales", "sales:", "sales:-1", ":5", "sales:x"])
def test_bad_daily_caps_name_the_entry(text: str) -> None:
    """Anything but queue:N (N >= 0) is refused with the entry in the message."""
    with pytest.raises(ValueError, match="is not queue:N"):
        parse_caps(text)
