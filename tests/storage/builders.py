"""Small builders for the domain values the storage tests store.

Times are fixed so that expected values can be written out in full.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ivr.core.domain import AgentLeg, Answer, CallRecord, HangupSide, SurveyStart

PBX = "pbx-lab"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus some seconds, as a UTC datetime."""
    return T0 + timedelta(seconds=seconds)


def epoch(seconds: float) -> float:
    """T0 plus some seconds, as the epoch float the domain uses for call times."""
    return at(seconds).timestamp()


def leg(
    name: str,
    number: int,
    *,
    queue: str | None = "sales",
    connected: float = 30.0,
    talk_seconds: int | None = None,
    ended_by: HangupSide | None = None,
) -> AgentLeg:
    """An agent leg on PJSIP/<number>, its channel unique per (number, time)."""
    return AgentLeg(
        name=name,
        interface=f"PJSIP/{number}",
        queue=queue,
        channel=f"PJSIP/{number}-{int(connected):08x}",
        connected_at=epoch(connected),
        hold_seconds=12,
        ring_seconds=3,
        talk_seconds=talk_seconds,
        ended_by=ended_by,
    )


def call(linkedid: str = "1741000000.1", **fields: object) -> CallRecord:
    """A call with sensible defaults; any field can be overridden."""
    values: dict[str, object] = {
        "pbx": PBX,
        "linkedid": linkedid,
        "caller_uniqueid": linkedid,
        "caller_channel": "PJSIP/customer-00000001",
        "caller_number": "+4930123456",
        "caller_name": "Ada Caller",
        "queue": "sales",
        "agents": (leg("Agent One", 1001),),
        "hold_seconds": 12,
        "started_at": epoch(0),
        "answered_at": epoch(1),
    }
    values.update(fields)
    return CallRecord(**values)  # type: ignore[arg-type]  # **values: CallRecord fields, by name


def start(record: CallRecord, seconds: float = 120.0) -> SurveyStart:
    """The AGI request that opens the survey of `record`."""
    return SurveyStart(
        pbx=record.pbx,
        linkedid=record.linkedid,
        channel=record.caller_channel or "PJSIP/customer-00000001",
        uniqueid=record.caller_uniqueid or record.linkedid,
        language="en",
        started_at=at(seconds),
    )


def answer(question: str, value: int | None, attempts: int = 1, seconds: float = 130.0) -> Answer:
    return Answer(question=question, value=value, attempts=attempts, answered_at=at(seconds))
