"""The call tracker, fed straight from the Asterisk 22 lab captures.

Each scenario replays the raw AMI events of one capture (`ivr.sim.transcript`)
into a fresh `CallTracker` and compares the whole `CallRecord` it reports when
the call ends. Times are the capture's own `## +s` markers, so every value in
the tables below can be checked against the capture files in
`ivr/sim/transcripts/`. Fact numbers refer to `docs/asterisk-facts.md`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.core.calls import CallTracker, is_restart
from ivr.core.domain import AgentLeg, AmiEvent, CallRecord, HangupSide
from ivr.sim.transcript import AmiMessage, ami_events

PBX = "lab"
AGENT_ONE = "Local/agent1@agents/n"
AGENT_TWO = "Local/agent2@agents/n"
AGENT = HangupSide.AGENT
CALLER = HangupSide.CALLER
TRANSFER = HangupSide.TRANSFER


def to_event(message: AmiMessage, pbx: str = PBX) -> AmiEvent:
    """An AmiEvent as the service builds it: first value of each header, repeats kept apart."""
    headers: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in message.headers:
        headers.setdefault(name, value)
        values.setdefault(name, []).append(value)
    repeated = {name: tuple(found) for name, found in values.items() if len(found) > 1}
    return AmiEvent(pbx, message.event, headers, message.at, repeated)


def capture(
    name: str,
    *,
    since: float = 0.0,
    until: float = float("inf"),
    keep: Callable[[AmiEvent], bool] = lambda event: True,
) -> list[AmiEvent]:
    """The events of a capture received in [since, until), optionally filtered."""
    return [
        event
        for event in map(to_event, ami_events(name))
        if since <= event.received_at < until and keep(event)
    ]


def replay(
    events: Iterable[AmiEvent], tracker: CallTracker | None = None
) -> tuple[CallTracker, list[CallRecord]]:
    """Feed events in order; return the tracker and every call reported as ended."""
    tracker = tracker or CallTracker(PBX)
    ended: list[CallRecord] = []
    for event in events:
        ended.extend(tracker.feed(event))
    return tracker, ended


def event(name: str, at: float, **headers: str) -> AmiEvent:
    return AmiEvent(PBX, name, headers, at)


def leg(
    name: str,
    interface: str,
    queue: str | None,
    channel: str,
    connected_at: float,
    *,
    talk: int | None,
    ended_by: HangupSide | None,
    hold: int | None = 1,
    ring: int | None = 1,
) -> AgentLeg:
    return AgentLeg(
        name=name,
        interface=interface,
        queue=queue,
        channel=channel,
        connected_at=connected_at,
        hold_seconds=hold,
        ring_seconds=ring,
        talk_seconds=talk,
        ended_by=ended_by,
    )


def call(
    linkedid: str,
    caller_uniqueid: str,
    caller_channel: str,
    *,
    queue: str,
    agents: tuple[AgentLeg, ...],
    hold: int | None,
    talk: int | None,
    ended_by: HangupSide | None,
    started_at: float,
    answered_at: float | None,
    ended_at: float | None,
    number: str | None = "+15550001111",
    name: str | None = "Customer",
    abandoned: bool = False,
    transferred: bool = False,
    partial: bool = False,
) -> CallRecord:
    return CallRecord(
        pbx=PBX,
        linkedid=linkedid,
        caller_uniqueid=caller_uniqueid,
        caller_channel=caller_channel,
        caller_number=number,
        caller_name=name,
        queue=queue,
        agents=agents,
        hold_seconds=hold,
        talk_seconds=talk,
        ended_by=ended_by,
        abandoned=abandoned,
        transferred=transferred,
        partial=partial,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
    )


# --- what each capture's queue call(s) must come out as -----------------------

QUEUE_CALL_SURVEY = call(
    "1795329453.8",
    "1795329453.9",
    "Local/s@callers-00000004;2",
    queue="support",
    agents=(
        leg(
            "Agent One",
            AGENT_ONE,
            "support",
            "Local/agent1@agents-00000005;1",
            1.578,
            talk=3,
            ended_by=AGENT,
        ),
    ),
    hold=1,
    talk=3,
    ended_by=AGENT,
    started_at=0.553,
    answered_at=1.578,
    ended_at=26.007,
)

LEAST_PRIVILEGE = call(
    "1795332587.36",
    "1795332587.37",
    "Local/s@callers-00000012;2",
    queue="support",
    agents=(
        leg(
            "Agent One",
            AGENT_ONE,
            "support",
            "Local/agent1@agents-00000013;1",
            1.579,
            talk=5,
            ended_by=AGENT,
        ),
    ),
    hold=1,
    talk=5,
    ended_by=AGENT,
    started_at=0.553,
    answered_at=1.579,
    ended_at=9.964,
)


@dataclass(frozen=True)
class Scenario:
    capture: str
    ended: tuple[CallRecord, ...]
    behaviour: str


SCENARIOS = [
    Scenario(
        "ami-queue-call-survey.txt",
        (QUEUE_CALL_SURVEY,),
        "agent hangs up, caller surveyed: the call ends with the caller ;2 Hangup after the AGI",
    ),
    Scenario(
        "ami-queue-call-survey-option-c.txt",
        (
            call(
                "1795329512.20",
                "1795329512.21",
                "Local/sales@callers-0000000a;2",
                queue="sales",
                agents=(
                    leg(
                        "Agent Two",
                        AGENT_TWO,
                        "sales",
                        "Local/agent2@agents-0000000b;1",
                        1.577,
                        talk=31,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=31,
                ended_by=AGENT,
                started_at=0.553,
                answered_at=1.577,
                ended_at=34.287,
            ),
        ),
        "Queue(sales,c): the member name comes from AgentConnect even without set*var",
    ),
    Scenario(
        "ami-caller-abandons-queue.txt",
        (
            call(
                "1795329494.16",
                "1795329494.17",
                "Local/wait@callers-00000008;2",
                queue="slow",
                agents=(),
                hold=3,
                talk=None,
                ended_by=None,
                abandoned=True,
                started_at=0.553,
                answered_at=None,
                ended_at=3.579,
            ),
        ),
        "abandon in queue (fact 11): no agent, hold from QueueCallerAbandon, duplicate CANCEL",
    ),
    Scenario(
        "ami-caller-abandons-survey.txt",
        (
            call(
                "1795329484.12",
                "1795329484.13",
                "Local/s@callers-00000006;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000007;1",
                        1.577,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=3,
                ended_by=AGENT,
                started_at=0.553,
                answered_at=1.577,
                ended_at=6.611,
            ),
        ),
        "caller hangs up during the survey: ;1 Hangup first, ;2 after the AGI closes (fact 24)",
    ),
    Scenario(
        "ami-caller-abandons-survey-idle.txt",
        (
            call(
                "1795329725.4",
                "1795329725.5",
                "Local/s@callers-00000002;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000003;1",
                        1.578,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=3,
                ended_by=AGENT,
                started_at=0.553,
                answered_at=1.578,
                ended_at=7.61,
            ),
        ),
        "caller hangs up while no AGI command runs: same record, ended by the ;2 Hangup",
    ),
    Scenario(
        "ami-caller-hangs-up-while-bridged.txt",
        (
            call(
                "1795329551.24",
                "1795329551.25",
                "Local/s@callers-0000000c;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-0000000d;1",
                        1.578,
                        talk=2,
                        ended_by=CALLER,
                    ),
                ),
                hold=1,
                talk=2,
                ended_by=CALLER,
                started_at=0.553,
                answered_at=1.578,
                ended_at=4.094,
            ),
        ),
        "caller hangs up while bridged (facts 9, 15): ended_by caller; F sends the agent leg on",
    ),
    Scenario(
        "ami-agi-server-down.txt",
        (
            call(
                "1795329700.0",
                "1795329700.1",
                "Local/s@callers-00000000;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000001;1",
                        1.579,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=3,
                ended_by=AGENT,
                started_at=0.553,
                answered_at=1.579,
                ended_at=4.597,
            ),
        ),
        "AGI server down (fact 16): the call still ends and is reported",
    ),
    Scenario(
        "ami-sip-call-survey.txt",
        (
            call(
                "1795329661.3",
                "1795329661.3",
                "PJSIP/sipp-00000001",
                number="+15550002222",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000001;1",
                        2.173,
                        ring=0,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=3,
                ended_by=AGENT,
                started_at=0.669,
                answered_at=2.173,
                ended_at=14.398,
            ),
        ),
        "a real SIP caller: one channel whose Uniqueid is the Linkedid",
    ),
    Scenario(
        "ami-utf8-callerid.txt",
        (
            call(
                "1795332601.40",
                "1795332601.41",
                "Local/s@callers-00000014;2",
                number="+989121234567",
                name="Ñandú محمد Жанна",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000015;1",
                        1.577,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=3,
                ended_by=AGENT,
                started_at=0.552,
                answered_at=1.577,
                ended_at=5.854,
            ),
        ),
        "UTF-8 caller name (fact 50) kept exactly",
    ),
    Scenario(
        "ami-blind-transfer.txt",
        (
            call(
                "1795332525.0",
                "1795332525.1",
                "Local/s@transfer-callers-00000000;2",
                queue="sales",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000001;1",
                        1.578,
                        talk=2,
                        ended_by=TRANSFER,
                    ),
                    leg(
                        "Agent Two",
                        AGENT_TWO,
                        "sales",
                        "Local/agent2@agents-00000002;1",
                        4.589,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=5,
                ended_by=AGENT,
                transferred=True,
                started_at=0.554,
                answered_at=1.578,
                ended_at=8.856,
            ),
        ),
        "blind transfer (facts 29-32): second queue on the same caller Uniqueid, Agent Two last",
    ),
    Scenario(
        "ami-blind-transfer-setvars.txt",
        (
            call(
                "1795332537.6",
                "1795332537.7",
                "Local/s@transfer-callers-00000003;2",
                queue="sales-vars",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000004;1",
                        1.577,
                        talk=2,
                        ended_by=TRANSFER,
                    ),
                    leg(
                        "Agent Two",
                        AGENT_TWO,
                        "sales-vars",
                        "Local/agent2@agents-00000005;1",
                        4.587,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=5,
                ended_by=AGENT,
                transferred=True,
                started_at=0.553,
                answered_at=1.577,
                ended_at=8.858,
            ),
        ),
        "blind transfer to a queue with set*var: same chain, whatever the channel variables say",
    ),
    Scenario(
        "ami-attended-transfer.txt",
        (
            call(
                "1795332549.12",
                "1795332549.13",
                "Local/s@transfer-callers-00000006;2",
                queue="sales",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000007;1",
                        1.576,
                        talk=6,
                        ended_by=TRANSFER,
                    ),
                    leg(
                        "Agent Two",
                        AGENT_TWO,
                        "sales",
                        "Local/agent2@agents-00000009;1",
                        5.59,
                        talk=5,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=11,
                ended_by=AGENT,
                transferred=True,
                started_at=0.552,
                answered_at=1.576,
                ended_at=11.865,
            ),
        ),
        "attended transfer through a queue (facts 34-36): caller kept, consultation's agent last",
    ),
    Scenario(
        "ami-attended-transfer-direct.txt",
        (
            call(
                "1795332564.20",
                "1795332564.21",
                "Local/s@transfer-callers-0000000a;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-0000000b;1",
                        1.577,
                        talk=5,
                        ended_by=TRANSFER,
                    ),
                    leg(
                        "Agent Two",
                        AGENT_TWO,
                        None,
                        "Local/agent2@agents-0000000d;1",
                        7.095,
                        hold=None,
                        ring=None,
                        talk=3,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=8,
                ended_by=AGENT,
                transferred=True,
                started_at=0.553,
                answered_at=1.577,
                ended_at=11.365,
            ),
        ),
        "attended transfer to a Dial (fact 37): no Agent* for Agent Two, AgentComplete w/o Dest*",
    ),
    Scenario(
        "ami-least-privilege-listener.txt",
        (LEAST_PRIVILEGE,),
        "least-privilege listener (fact 44): 22 events plus its own QueueStatus/BridgeInfo",
    ),
    Scenario(
        "ami-least-privilege-same-call-read-all.txt",
        (
            replace(
                LEAST_PRIVILEGE,
                agents=(replace(LEAST_PRIVILEGE.agents[0], connected_at=1.629),),
                started_at=0.604,
                answered_at=1.629,
                ended_at=10.013,
            ),
        ),
        "the same call on a read=all session: the same record, other arrival times",
    ),
    Scenario(
        "ami-asterisk-restart.txt",
        (
            call(
                "1795332610.44",
                "1795332610.45",
                "Local/s@transfer-callers-00000016;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000017;1",
                        1.577,
                        talk=2,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=2,
                ended_by=AGENT,
                started_at=0.553,
                answered_at=1.577,
                ended_at=21.833,
            ),
        ),
        "restart while the AGI socket stays open (fact 47): no ;2 Hangup, Shutdown ends it",
    ),
    Scenario(
        "ami-asterisk-restart-agi-closes.txt",
        (
            call(
                "1795332640.0",
                "1795332640.1",
                "Local/s@transfer-callers-00000000;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-00000001;1",
                        1.577,
                        talk=2,
                        ended_by=AGENT,
                    ),
                ),
                hold=1,
                talk=2,
                ended_by=AGENT,
                started_at=0.553,
                answered_at=1.577,
                ended_at=5.668,
            ),
        ),
        "restart after the AGI closes: the normal ;2 Hangup ends it before the Shutdown",
    ),
    Scenario(
        "ami-resync-actions.txt",
        (
            call(
                "1795332579.32",
                "1795332579.33",
                "Local/wait@callers-00000010;2",
                number="+15550002222",
                name="Waiting Caller",
                queue="slow",
                agents=(),
                hold=4,
                talk=None,
                ended_by=None,
                abandoned=True,
                started_at=1.579,
                answered_at=None,
                ended_at=4.916,
            ),
            call(
                "1795332578.28",
                "1795332578.29",
                "Local/s@transfer-callers-0000000e;2",
                queue="support",
                agents=(
                    leg(
                        "Agent One",
                        AGENT_ONE,
                        "support",
                        "Local/agent1@agents-0000000f;1",
                        1.576,
                        talk=4,
                        ended_by=CALLER,
                    ),
                ),
                hold=1,
                talk=4,
                ended_by=CALLER,
                started_at=0.552,
                answered_at=1.576,
                ended_at=5.419,
            ),
        ),
        "two calls plus every list action: lists of known calls add nothing, nothing is partial",
    ),
]


@pytest.mark.parametrize(
    "scenario", SCENARIOS, ids=[scenario.capture.removesuffix(".txt") for scenario in SCENARIOS]
)
def test_capture_yields_the_expected_call_records(scenario: Scenario) -> None:
    """Every capture with a queue call: the full record is reported once, when the call ends."""
    tracker, ended = replay(capture(scenario.capture))

    assert tuple(ended) == scenario.ended, scenario.behaviour
    assert tracker.live_count == 0
    for record in scenario.ended:
        assert tracker.get(record.linkedid) == record
        assert record.caller_uniqueid is not None
        assert tracker.find_by_uniqueid(record.caller_uniqueid) == record


def test_least_privilege_listener_knows_as_much_as_read_all() -> None:
    """22 events (fact 44) are enough: only the arrival times differ from the read=all twin."""
    _, listener = replay(capture("ami-least-privilege-listener.txt"))
    _, read_all = replay(capture("ami-least-privilege-same-call-read-all.txt"))

    def untimed(record: CallRecord) -> CallRecord:
        return replace(
            record,
            agents=tuple(replace(agent, connected_at=0.0) for agent in record.agents),
            started_at=None,
            answered_at=None,
            ended_at=None,
        )

    assert [untimed(record) for record in listener] == [untimed(record) for record in read_all]


def test_call_is_live_and_credited_while_the_caller_is_in_the_survey() -> None:
    """At AGI time (after AgentComplete, before the ;2 Hangup, fact 23) get() names Agent One."""
    tracker, ended = replay(capture("ami-queue-call-survey.txt", until=26.0))

    assert ended == []
    assert tracker.get("1795329453.8") == replace(QUEUE_CALL_SURVEY, ended_at=None)
    assert tracker.live_count == 1


def test_call_ends_only_when_its_last_channel_hangs_up() -> None:
    """After the agent halves hang up, the caller halves keep the call live (facts 10, 24)."""
    events = capture("ami-caller-abandons-survey.txt")
    tracker, ended = replay(event for event in events if event.received_at < 6.2)

    assert ended == []
    record = tracker.get("1795329484.12")
    assert record is not None
    assert record.ended_at is None
    assert record.last_agent is not None
    assert record.last_agent.name == "Agent One"


def test_agent_ring_no_answer_milliseconds_never_enter_the_chain() -> None:
    """AgentRingNoAnswer (RingTime in ms) marks a queue call but adds no agent."""
    tracker = CallTracker(PBX)
    for message in capture("ami-queue-call-survey.txt", until=0.6):
        tracker.feed(message)
    tracker.feed(
        event(
            "AgentRingNoAnswer",
            0.9,
            Channel="Local/s@callers-00000004;2",
            Uniqueid="1795329453.9",
            Linkedid="1795329453.8",
            Queue="support",
            MemberName="Agent Three",
            Interface="Local/agent3@agents/n",
            RingTime="15000",
        )
    )

    record = tracker.get("1795329453.8")
    assert record is not None
    assert record.agents == ()
    assert record.caller_number == "+15550001111"


# --- transfers ----------------------------------------------------------------


def test_consulted_agent_is_not_credited_before_the_attended_transfer_completes() -> None:
    """While Agent One consults Agent Two (fact 34), the caller has only spoken with Agent One."""
    tracker, _ = replay(capture("ami-attended-transfer.txt", until=7.5))

    record = tracker.get("1795332549.12")
    assert record is not None
    assert [agent.name for agent in record.agents] == ["Agent One"]
    assert record.caller_channel == "Local/s@transfer-callers-00000006;2"
    assert record.caller_uniqueid == "1795332549.13"
    assert record.transferred is False
    consultation = tracker.find_by_uniqueid("1795332552.17")
    assert consultation == record


def test_cancelled_consultation_never_credits_the_consulted_agent() -> None:
    """Agent Two hangs up before the transfer completes: Agent One stays the last agent."""
    events = capture("ami-attended-transfer.txt", until=7.5)
    cancelled = [
        event(
            "AgentComplete",
            7.0,
            Channel="Local/2000@transfer-targets-00000008;2",
            Uniqueid="1795332552.17",
            Linkedid="1795332549.12",
            DestUniqueid="1795332553.18",
            Queue="sales",
            MemberName="Agent Two",
            Interface=AGENT_TWO,
            HoldTime="1",
            TalkTime="1",
            Reason="agent",
        ),
        *(
            event("Hangup", 7.0, Channel=channel, Uniqueid=uniqueid, Linkedid="1795332549.12")
            for channel, uniqueid in [
                ("Local/agent2@agents-00000009;2", "1795332553.19"),
                ("Local/agent2@agents-00000009;1", "1795332553.18"),
                ("Local/2000@transfer-targets-00000008;2", "1795332552.17"),
                ("Local/2000@transfer-targets-00000008;1", "1795332552.16"),
            ]
        ),
        event(
            "BridgeEnter",
            7.1,
            Channel="Local/agent1@agents-00000007;1",
            Uniqueid="1795332549.14",
            Linkedid="1795332549.12",
            BridgeUniqueid="afef9d22-cc54-4a36-b230-fb3114954219",
        ),
    ]
    tracker, _ = replay([*events, *cancelled])

    record = tracker.get("1795332549.12")
    assert record is not None
    assert [agent.name for agent in record.agents] == ["Agent One"]
    assert record.transferred is False


def test_attended_transfer_event_alone_hands_the_call_to_the_consulted_agent() -> None:
    """Without bridge events, AttendedTransfer Success still credits Agent Two (fact 35)."""
    bridge_events = {"BridgeEnter", "BridgeLeave", "BridgeMerge", "BridgeCreate", "BridgeDestroy"}
    _, [record] = replay(
        capture("ami-attended-transfer.txt", keep=lambda event: event.name not in bridge_events)
    )

    assert [(agent.name, agent.queue) for agent in record.agents] == [
        ("Agent One", "support"),
        ("Agent Two", "sales"),
    ]
    assert record.caller_uniqueid == "1795332549.13"


def test_direct_transfer_target_is_named_by_interface_without_member_events() -> None:
    """A listener that filters QueueMemberStatus names Agent Two by its dialled interface."""
    _, ended = replay(
        capture(
            "ami-attended-transfer-direct.txt",
            keep=lambda event: event.name != "QueueMemberStatus",
        )
    )

    [record] = ended
    last = record.last_agent
    assert last is not None
    assert (last.name, last.interface, last.queue) == (AGENT_TWO, AGENT_TWO, None)


def test_direct_transfer_target_falls_back_to_the_dialled_caller_id_name() -> None:
    """With no member name known, a DestCallerIDName on the Dial names the direct agent."""

    def named(event: AmiEvent) -> AmiEvent:
        if event.name == "DialBegin" and event.get("DestUniqueid") == "1795332567.26":
            return replace(event, headers={**event.headers, "DestCallerIDName": "Bob Agent"})
        return event

    _, ended = replay(
        named(event)
        for event in capture(
            "ami-attended-transfer-direct.txt",
            keep=lambda event: event.name != "QueueMemberStatus",
        )
    )

    [record] = ended
    assert record.last_agent is not None
    assert record.last_agent.name == "Bob Agent"


def test_transfer_events_without_success_change_nothing() -> None:
    """A BlindTransfer whose Result is not Success does not mark the call transferred."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=2.0))
    tracker.feed(
        event(
            "BlindTransfer",
            2.5,
            Result="Fail",
            TransfererUniqueid="1795329453.10",
            TransfererLinkedid="1795329453.8",
            TransfereeUniqueid="1795329453.9",
            TransfereeLinkedid="1795329453.8",
        )
    )

    record = tracker.get("1795329453.8")
    assert record is not None
    assert record.transferred is False


# --- resync -------------------------------------------------------------------


def test_resync_lists_rebuild_partial_records_after_a_reconnect() -> None:
    """A fresh tracker fed QueueStatus + CoreShowChannels (facts 40-42) knows both calls."""
    tracker, ended = replay(capture("ami-resync-actions.txt", since=3.1, until=4.0))

    assert ended == []
    waiting = tracker.get("1795332579.32")
    bridged = tracker.get("1795332578.28")
    assert waiting == call(
        "1795332579.32",
        "1795332579.33",
        "Local/wait@callers-00000010;2",
        number="+15550002222",
        name="Waiting Caller",
        queue="slow",
        agents=(),
        hold=None,
        talk=None,
        ended_by=None,
        partial=True,
        started_at=3.105 - 2,
        answered_at=None,
        ended_at=None,
    )
    assert bridged == call(
        "1795332578.28",
        "1795332578.29",
        "Local/s@transfer-callers-0000000e;2",
        queue="support",
        agents=(
            leg(
                "Agent One",
                AGENT_ONE,
                "support",
                "Local/agent1@agents-0000000f;1",
                3.708,
                hold=None,
                ring=None,
                talk=None,
                ended_by=None,
            ),
        ),
        hold=None,
        talk=None,
        ended_by=None,
        partial=True,
        started_at=3.708 - 3,
        answered_at=3.708,
        ended_at=None,
    )
    assert tracker.get("1795332579.33") is None  # the provisional key moved to the Linkedid

    _, later = replay(capture("ami-resync-actions.txt", since=4.0), tracker)
    assert [(record.linkedid, record.partial, record.ended_by) for record in later] == [
        ("1795332579.32", True, None),
        ("1795332578.28", True, CALLER),
    ]
    assert later[0].abandoned is True
    assert later[0].hold_seconds == 4
    assert later[1].talk_seconds == 4


def test_queue_entry_alone_builds_a_provisional_record_keyed_by_uniqueid() -> None:
    """QueueEntry has no Linkedid (fact 41): kept under its Uniqueid until one arrives."""
    [entry] = capture("ami-resync-actions.txt", keep=lambda event: event.name == "QueueEntry")
    tracker = CallTracker(PBX)
    assert tracker.feed(entry) == []

    provisional = tracker.get("1795332579.33")
    assert provisional is not None
    assert (provisional.queue, provisional.caller_number, provisional.partial) == (
        "slow",
        "+15550002222",
        True,
    )
    assert tracker.find_by_uniqueid("1795332579.33") == provisional

    ended = tracker.feed(
        event(
            "Hangup",
            5.0,
            Channel="Local/wait@callers-00000010;2",
            Uniqueid="1795332579.33",
            Linkedid="1795332579.32",
        )
    )
    assert [record.linkedid for record in ended] == ["1795332579.32"]
    assert tracker.get("1795332579.33") is None


def test_bridge_info_resync_finds_the_agent_for_a_least_privilege_listener() -> None:
    """Without CoreShowChannels, QueueMember + BridgeInfoChannel name caller and agent (fact 43)."""
    tracker, ended = replay(capture("ami-least-privilege-listener.txt", since=2.58))

    assert ended == [
        replace(
            LEAST_PRIVILEGE,
            agents=(replace(LEAST_PRIVILEGE.agents[0], connected_at=2.587, ring_seconds=None),),
            started_at=2.587,
            answered_at=2.587,
            partial=True,
        )
    ]
    assert tracker.live_count == 0


def test_a_call_live_across_a_reconnect_becomes_partial() -> None:
    """AMI never replays missed events: a FullyBooted of the same Asterisk taints live calls."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))
    ended = tracker.feed(event("FullyBooted", 12.0, Uptime="156", Status="Fully Booted"))

    assert ended == []
    record = tracker.get("1795329453.8")
    assert record is not None
    assert record.partial is True
    assert record.ended_at is None


def test_complete_channel_list_ends_calls_whose_hangups_were_lost() -> None:
    """A call not in a complete CoreShowChannels and silent since the login has ended."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))
    tracker.feed(event("FullyBooted", 30.0, Uptime="174"))
    listing = [
        replace(item, received_at=31.0)
        for item in capture("ami-resync-actions.txt", since=3.7, until=3.8)
    ]

    _, ended = replay(listing, tracker)

    assert [(record.linkedid, record.partial, record.ended_at) for record in ended] == [
        ("1795329453.8", True, 31.0)
    ]
    assert tracker.get("1795332578.28") is not None  # listed: recreated, still live


def _ended_without_hangups(how: str) -> list[CallRecord]:
    """A call cut off while its agent was still talking, ended each way a Hangup can be lost."""
    tracker = CallTracker(PBX, stale_seconds=600)
    replay(capture("ami-queue-call-survey.txt", until=4.0), tracker)
    if how == "resync":
        tracker.feed(event("FullyBooted", 30.0, Uptime="174"))
        listing = capture("ami-resync-actions.txt", since=3.7, until=3.8)
        return replay([replace(item, received_at=31.0) for item in listing], tracker)[1]
    if how == "restart":
        return tracker.feed(event("FullyBooted", 31.0, Uptime="1"))
    if how == "shutdown":
        return tracker.feed(event("Shutdown", 31.0, Shutdown="Uncleanly", Restart="True"))
    return tracker.expire_stale(605.0)


@pytest.mark.parametrize(
    ("how", "expected_partial"),
    [("resync", True), ("restart", False), ("shutdown", False), ("stale", True)],
)
def test_a_call_whose_hangups_were_lost_ends_with_its_agent_leg_ended_by_unknown(
    how: str, expected_partial: bool
) -> None:
    """Nobody knows who hung up a call that ended unseen (AMI down, Asterisk restarted,
    events lost): the open agent leg and the call say `unknown`, never nothing, so the
    stored row tells "not known" from "still talking"."""
    [record] = _ended_without_hangups(how)

    assert ("1795329453.8", HangupSide.UNKNOWN, HangupSide.UNKNOWN, None, expected_partial) == (
        record.linkedid,
        record.ended_by,
        record.agents[-1].ended_by,
        record.agents[-1].talk_seconds,
        record.partial,
    )


def test_incomplete_channel_list_ends_nothing() -> None:
    """When ListItems does not match the items received, the list proves nothing."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))
    tracker.feed(event("FullyBooted", 30.0, Uptime="174"))
    listing = capture("ami-resync-actions.txt", since=3.7, until=3.8)
    listing = [item for item in listing if item.get("Uniqueid") != "1795332578.30"]

    _, ended = replay(listing, tracker)

    assert ended == []
    assert tracker.live_count >= 1


# --- restart, eviction, memory --------------------------------------------------


def test_is_restart_recognises_a_freshly_booted_asterisk() -> None:
    """FullyBooted with a small Uptime means a restart (fact 49); anything else does not."""
    assert is_restart(event("FullyBooted", 0.0, Uptime="1", LastReload="1"))
    assert not is_restart(event("FullyBooted", 0.0, Uptime="144"))
    assert is_restart(event("FullyBooted", 0.0, Uptime="144"), max_uptime=200)
    assert not is_restart(event("FullyBooted", 0.0, Uptime="soon"))
    assert not is_restart(event("FullyBooted", 0.0))
    assert not is_restart(event("Shutdown", 0.0, Uptime="1"))


def test_asterisk_restarted_ends_every_live_call() -> None:
    """No Hangup comes after a restart (fact 47): the live calls end now and are returned."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))
    second = capture("ami-caller-abandons-queue.txt", until=2.0)
    replay((event for event in second if event.name != "FullyBooted"), tracker)

    ended = tracker.asterisk_restarted(50.0)

    assert [(record.linkedid, record.ended_at) for record in ended] == [
        ("1795329453.8", 50.0),
        ("1795329494.16", 50.0),
    ]
    assert tracker.live_count == 0
    assert tracker.asterisk_restarted(51.0) == []
    assert tracker.get("1795329453.8") == replace(QUEUE_CALL_SURVEY, ended_at=50.0)


def test_fully_booted_after_a_restart_ends_live_calls() -> None:
    """Uptime shorter than the time since the last event: Asterisk restarted meanwhile."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))

    ended = tracker.feed(event("FullyBooted", 40.0, Uptime="1", LastReload="1"))

    assert [(record.linkedid, record.ended_at) for record in ended] == [("1795329453.8", 40.0)]


def test_events_after_the_end_do_not_revive_a_call() -> None:
    """A late event with an ended call's Linkedid is ignored while the record is retained."""
    tracker, [record] = replay(capture("ami-queue-call-survey.txt"))
    late = event(
        "CEL",
        27.0,
        EventName="LINKEDID_END",
        Channel="Local/s@callers-00000004;1",
        UniqueID="1795329453.8",
        LinkedID="1795329453.8",
    )

    assert tracker.feed(late) == []
    assert tracker.live_count == 0
    assert tracker.get("1795329453.8") == record


def test_ended_calls_are_evicted_after_retention() -> None:
    """get() keeps an ended call for retention_seconds, then evict() forgets it."""
    tracker, _ = replay(
        capture("ami-queue-call-survey.txt"), CallTracker(PBX, retention_seconds=60)
    )

    assert tracker.evict(26.007 + 60) == 0
    assert tracker.get("1795329453.8") is not None
    assert tracker.evict(26.007 + 60.5) == 1
    assert tracker.get("1795329453.8") is None
    assert tracker.find_by_uniqueid("1795329453.9") is None
    assert tracker.tracked_count == 0


def test_live_calls_are_not_evicted_by_retention() -> None:
    """A call still in progress survives eviction however old it is, up to stale_seconds."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))

    assert tracker.evict(5000.0) == 0
    assert tracker.get("1795329453.8") is not None


def test_silent_live_calls_are_expired_and_then_evicted() -> None:
    """Hangups lost for good: expire_stale() reports the queue call, evict() bounds memory."""
    tracker = CallTracker(PBX, retention_seconds=60, stale_seconds=600)
    replay(capture("ami-queue-call-survey.txt", until=10.0), tracker)

    assert tracker.expire_stale(500.0) == []
    [expired] = tracker.expire_stale(700.0)
    assert (expired.linkedid, expired.partial, expired.ended_at) == ("1795329453.8", True, 700.0)
    assert tracker.evict(761.0) == 1
    assert tracker.tracked_count == 0


def test_non_queue_calls_are_tracked_minimally_and_forgotten() -> None:
    """A call that never meets a queue is never reported, and leaves nothing when it ends."""
    newchannel = {"Linkedid": "1795330000.1", "Channel": "PJSIP/trunk-00000009"}
    tracker = CallTracker(PBX, stale_seconds=600)
    tracker.feed(event("Newchannel", 1.0, Uniqueid="1795330000.1", **newchannel))

    assert tracker.get("1795330000.1") is None
    assert (tracker.live_count, tracker.tracked_count) == (1, 1)
    assert tracker.feed(event("Hangup", 2.0, Uniqueid="1795330000.1", **newchannel)) == []
    assert (tracker.live_count, tracker.tracked_count) == (0, 0)

    tracker.feed(event("Newchannel", 3.0, Uniqueid="1795330000.7", Linkedid="1795330000.7"))
    assert tracker.evict(604.0) == 1  # its Hangup never came
    assert tracker.tracked_count == 0


def test_hangup_of_an_unknown_call_creates_nothing() -> None:
    """A Hangup for a Linkedid never seen is ignored."""
    tracker = CallTracker(PBX)

    assert tracker.feed(event("Hangup", 1.0, Uniqueid="9.1", Linkedid="9.0")) == []
    assert tracker.tracked_count == 0


def test_a_changed_linkedid_merges_the_calls_and_keeps_the_old_key() -> None:
    """A bridge copies the oldest Linkedid to its channels: both keys find the one call."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))
    tracker.feed(event("Newchannel", 10.5, Uniqueid="1795320000.1", Linkedid="1795320000.1"))
    tracker.feed(
        event(
            "BridgeEnter",
            11.0,
            Channel="Local/s@callers-00000004;2",
            Uniqueid="1795329453.9",
            Linkedid="1795320000.1",
            BridgeUniqueid="conference",
        )
    )

    merged = tracker.get("1795320000.1")
    assert merged is not None
    assert tracker.get("1795329453.8") == merged
    assert merged.linkedid == "1795320000.1"
    assert merged.last_agent is not None
    assert merged.last_agent.name == "Agent One"
    assert tracker.live_count == 1


def test_two_queue_calls_bridged_together_become_one() -> None:
    """The newer call's channel takes the older Linkedid: one record, the older call's caller."""
    tracker, _ = replay(capture("ami-queue-call-survey.txt", until=10.0))
    newer = capture("ami-caller-abandons-queue.txt", until=2.0)
    replay((event for event in newer if event.name != "FullyBooted"), tracker)
    tracker.feed(
        event(
            "BridgeEnter",
            11.0,
            Channel="Local/wait@callers-00000008;2",
            Uniqueid="1795329494.17",
            Linkedid="1795329453.8",
            BridgeUniqueid="conference",
        )
    )

    merged = tracker.get("1795329453.8")
    assert merged is not None
    assert tracker.get("1795329494.16") == merged
    assert tracker.find_by_uniqueid("1795329494.17") == merged
    assert merged.caller_uniqueid == "1795329453.9"
    assert [agent.name for agent in merged.agents] == ["Agent One"]
    assert tracker.live_count == 1


# --- odd input ------------------------------------------------------------------


def test_unknown_caller_id_and_garbage_numbers_become_none() -> None:
    """`<unknown>` caller id is None; a non-numeric HoldTime or Reason is ignored, not fatal."""
    base = {"Linkedid": "5.0", "Uniqueid": "5.1", "Channel": "PJSIP/x-00000001"}
    _, ended = replay(
        [
            event(
                "QueueCallerJoin",
                1.0,
                Queue="q",
                CallerIDNum="<unknown>",
                CallerIDName="<unknown>",
                **base,
            ),
            event(
                "AgentConnect",
                2.0,
                Queue="q",
                MemberName="Ann",
                Interface="PJSIP/ann",
                DestChannel="PJSIP/ann-00000002",
                DestUniqueid="5.2",
                HoldTime="abc",
                RingTime="-3",
                **base,
            ),
            event(
                "AgentComplete",
                3.0,
                Queue="q",
                MemberName="Ann",
                Interface="PJSIP/ann",
                DestUniqueid="5.2",
                TalkTime="1e3",
                Reason="phase of the moon",
                **base,
            ),
            event(
                "AgentComplete",
                3.1,
                Queue="q",
                MemberName="Ann",
                DestUniqueid="5.2",
                TalkTime="9",
                Reason="agent",
                **base,
            ),
            event("Hangup", 4.0, Uniqueid="5.2", Linkedid="5.0"),
            event("Hangup", 4.0, **base),
        ]
    )

    assert ended == [
        CallRecord(
            pbx=PBX,
            linkedid="5.0",
            caller_uniqueid="5.1",
            caller_channel="PJSIP/x-00000001",
            queue="q",
            agents=(
                AgentLeg(
                    "Ann", "PJSIP/ann", "q", "PJSIP/ann-00000002", 2.0, ended_by=HangupSide.UNKNOWN
                ),
            ),
            ended_by=HangupSide.UNKNOWN,
            started_at=1.0,
            answered_at=2.0,
            ended_at=4.0,
        )
    ]


def test_agent_complete_without_connect_builds_a_partial_leg() -> None:
    """Tracker started mid-call: AgentComplete alone still credits the agent, as partial."""
    events = capture("ami-queue-call-survey.txt", keep=lambda event: event.name != "AgentConnect")
    _, [record] = replay(event for event in events if event.received_at >= 4.0)

    assert record.partial is True
    assert record.last_agent == leg(
        "Agent One",
        AGENT_ONE,
        "support",
        "Local/agent1@agents-00000005;1",
        4.597 - 3,
        ring=None,
        talk=3,
        ended_by=AGENT,
    )
    assert record.caller_number == "+15550001111"


EVENT_NAMES = sorted(
    {message.event for name in (s.capture for s in SCENARIOS) for message in ami_events(name)}
    | {"QueueEntry", "AgentRingNoAnswer", "Rename", "QueueMemberRemoved", "AgentDump"}
)
HEADER_NAMES = sorted(
    {
        header
        for name in ("ami-attended-transfer-direct.txt", "ami-resync-actions.txt")
        for message in ami_events(name)
        for header, _ in message.headers
    }
)
IDS = ["1.0", "1.1", "1.2", "1.3", "2.0", "2.1"]
VALUES = st.one_of(
    st.sampled_from(
        [
            *IDS,
            "",
            "<unknown>",
            "0",
            "7",
            "-1",
            "abc",
            "00:00:03",
            "99999999999999999999",
            "Success",
            "transfer",
            "Queue",
            "AppQueue",
            "support",
            "Local/agent1@agents/n",
            "Local/agent1@agents-00000001;1",
            "Local/agent1@agents-00000001;2",
            "Local/s@callers-00000002;2",
            "bridge-a",
        ]
    ),
    st.text(max_size=12),
)
RANDOM_EVENTS = st.builds(
    lambda name, headers, at: AmiEvent(PBX, name, headers, at),
    st.one_of(st.sampled_from(EVENT_NAMES), st.text(max_size=12)),
    st.dictionaries(
        st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=8)), VALUES, max_size=10
    ),
    st.one_of(st.floats(min_value=0, max_value=100), st.floats()),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(RANDOM_EVENTS, max_size=40), st.floats(allow_nan=False))
def test_random_events_never_raise(events: list[AmiEvent], now: float) -> None:
    """Any event name, any headers, any values, in any order: feed() and friends never raise."""
    tracker = CallTracker(PBX, retention_seconds=1, stale_seconds=5)
    for random_event in events:
        for record in tracker.feed(random_event):
            assert record.ended_at is not None
        for key in IDS:
            tracker.get(key)
            tracker.find_by_uniqueid(key)
    assert tracker.live_count <= tracker.tracked_count
    tracker.expire_stale(now)
    tracker.evict(now)
    tracker.asterisk_restarted(now)
    assert tracker.live_count == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(RANDOM_EVENTS, max_size=15), st.integers(min_value=0, max_value=400))
def test_garbage_interleaved_with_a_real_call_never_raises(
    garbage: list[AmiEvent], position: int
) -> None:
    """Random events dropped into a real capture never raise and never end it twice."""
    events = capture("ami-attended-transfer.txt")
    position = min(position, len(events))
    tracker = CallTracker(PBX)
    seen: list[str] = []
    for item in [*events[:position], *garbage, *events[position:]]:
        seen.extend(record.linkedid for record in tracker.feed(item))
    assert len(seen) == len(set(seen))


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([scenario.capture for scenario in SCENARIOS]),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.sampled_from(HEADER_NAMES),
            st.one_of(st.none(), VALUES),
        ),
        max_size=30,
    ),
)
def test_corrupted_capture_events_never_raise(
    name: str, corruptions: list[tuple[int, str, str | None]]
) -> None:
    """Real events with headers removed or replaced by garbage: never raise, end at most once."""
    events = capture(name)
    for index, header, value in corruptions:
        target = events[index % len(events)]
        headers = {key: found for key, found in target.headers.items() if key != header}
        if value is not None:
            headers[header] = value
        events[index % len(events)] = replace(target, headers=headers)
    tracker = CallTracker(PBX)
    seen: list[str] = []
    for item in events:
        seen.extend(record.linkedid for record in tracker.feed(item))
    assert len(seen) == len(set(seen))
