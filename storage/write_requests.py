"""The writes the group-commit writer queues, and their JSON form for the spool.

A survey opened while the database was down has no database id yet: it gets a
provisional one (negative, so it can never be mistaken for a real id), and its
answers and status are spooled under it. The replay maps it onto the real id,
or onto None when the call turned out to be surveyed already.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.core.domain import (
    AgentLeg,
    Answer,
    CallRecord,
    Comment,
    HangupSide,
    SurveyStart,
    SurveyStatus,
)


@dataclass(slots=True)
class SaveCall:
    call: CallRecord

    @property
    def linkedid(self) -> str:
        return self.call.linkedid


@dataclass(slots=True)
class BeginSurvey:
    call: CallRecord
    start: SurveyStart
    reply: asyncio.Future[int | None] | None = None
    provisional: int | None = None

    @property
    def linkedid(self) -> str:
        return self.call.linkedid


@dataclass(slots=True)
class SaveAnswer:
    survey_id: int
    answer: Answer
    linkedid: str = "-"


@dataclass(slots=True)
class FinishSurvey:
    survey_id: int
    status: SurveyStatus
    finished_at: datetime
    linkedid: str = "-"


@dataclass(slots=True)
class SaveComment:
    survey_id: int
    comment: Comment
    linkedid: str = "-"


@dataclass(slots=True)
class RecordDecision:
    call: CallRecord
    decision: str

    @property
    def linkedid(self) -> str:
        return self.call.linkedid


@dataclass(slots=True)
class Flush:
    """Resolved once every write queued before it is committed or spooled."""

    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


Write = SaveCall | BeginSurvey | SaveAnswer | FinishSurvey | SaveComment | RecordDecision
Request = Write | Flush


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {value!r}")
    return parsed


def _call(call: CallRecord) -> dict[str, Any]:
    return {
        "pbx": call.pbx,
        "linkedid": call.linkedid,
        "caller_uniqueid": call.caller_uniqueid,
        "caller_channel": call.caller_channel,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "caller_key": call.caller_key,
        "queue": call.queue,
        "agents": [
            {
                "name": leg.name,
                "interface": leg.interface,
                "queue": leg.queue,
                "channel": leg.channel,
                "connected_at": leg.connected_at,
                "hold_seconds": leg.hold_seconds,
                "ring_seconds": leg.ring_seconds,
                "talk_seconds": leg.talk_seconds,
                "ended_by": leg.ended_by,
            }
            for leg in call.agents
        ],
        "hold_seconds": call.hold_seconds,
        "talk_seconds": call.talk_seconds,
        "ended_by": call.ended_by,
        "abandoned": call.abandoned,
        "transferred": call.transferred,
        "partial": call.partial,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
    }


def _side(value: Any) -> HangupSide | None:
    return None if value is None else HangupSide(value)


def _parse_call(data: dict[str, Any]) -> CallRecord:
    agents = tuple(
        AgentLeg(
            name=leg["name"],
            interface=leg["interface"],
            queue=leg["queue"],
            channel=leg["channel"],
            connected_at=float(leg["connected_at"]),
            hold_seconds=leg["hold_seconds"],
            ring_seconds=leg["ring_seconds"],
            talk_seconds=leg["talk_seconds"],
            ended_by=_side(leg["ended_by"]),
        )
        for leg in data["agents"]
    )
    return CallRecord(
        pbx=data["pbx"],
        linkedid=data["linkedid"],
        caller_uniqueid=data["caller_uniqueid"],
        caller_channel=data["caller_channel"],
        caller_number=data["caller_number"],
        caller_name=data["caller_name"],
        # Spools written before caller keys existed have none.
        caller_key=data.get("caller_key"),
        queue=data["queue"],
        agents=agents,
        hold_seconds=data["hold_seconds"],
        talk_seconds=data["talk_seconds"],
        ended_by=_side(data["ended_by"]),
        abandoned=bool(data["abandoned"]),
        transferred=bool(data["transferred"]),
        partial=bool(data["partial"]),
        started_at=data["started_at"],
        answered_at=data["answered_at"],
        ended_at=data["ended_at"],
    )


def encode(write: Write) -> dict[str, Any]:
    """The JSON object a spool line holds; every line names its Linkedid."""
    if isinstance(write, SaveCall):
        return {"op": "call", "linkedid": write.linkedid, "call": _call(write.call)}
    if isinstance(write, BeginSurvey):
        start = write.start
        return {
            "op": "begin",
            "linkedid": write.linkedid,
            "provisional": write.provisional,
            "call": _call(write.call),
            "start": {
                "pbx": start.pbx,
                "linkedid": start.linkedid,
                "channel": start.channel,
                "uniqueid": start.uniqueid,
                "language": start.language,
                "started_at": _time(start.started_at),
                "opted_in": start.opted_in,
                "initiated_by": start.initiated_by,
            },
        }
    if isinstance(write, SaveAnswer):
        answer = write.answer
        return {
            "op": "answer",
            "linkedid": write.linkedid,
            "survey_id": write.survey_id,
            "question": answer.question,
            "value": answer.value,
            "attempts": answer.attempts,
            "answered_at": _time(answer.answered_at),
        }
    if isinstance(write, RecordDecision):
        return {
            "op": "decision",
            "linkedid": write.linkedid,
            "call": _call(write.call),
            "decision": write.decision,
        }
    if isinstance(write, SaveComment):
        comment = write.comment
        return {
            "op": "comment",
            "linkedid": write.linkedid,
            "survey_id": write.survey_id,
            "file": comment.file,
            "format": comment.format,
            "duration_seconds": comment.duration_seconds,
            "ended_by": comment.ended_by,
            "recorded_at": _time(comment.recorded_at),
        }
    return {
        "op": "finish",
        "linkedid": write.linkedid,
        "survey_id": write.survey_id,
        "status": write.status.value,
        "finished_at": _time(write.finished_at),
    }


def decode(data: dict[str, Any]) -> Write:
    """A spool line back into its write; KeyError/TypeError/ValueError when corrupt."""
    op = data["op"]
    if op == "call":
        return SaveCall(_parse_call(data["call"]))
    if op == "begin":
        start = data["start"]
        provisional = data["provisional"]
        if not isinstance(provisional, int):
            raise TypeError("a spooled survey start without its provisional id")
        return BeginSurvey(
            call=_parse_call(data["call"]),
            start=SurveyStart(
                pbx=start["pbx"],
                linkedid=start["linkedid"],
                channel=start["channel"],
                uniqueid=start["uniqueid"],
                language=start["language"],
                started_at=_parse_time(start["started_at"]),
                opted_in=start["opted_in"],
                initiated_by=start["initiated_by"],
            ),
            provisional=provisional,
        )
    if op == "answer":
        return SaveAnswer(
            survey_id=int(data["survey_id"]),
            answer=Answer(
                question=str(data["question"]),
                value=data["value"],
                attempts=int(data["attempts"]),
                answered_at=_parse_time(data["answered_at"]),
            ),
            linkedid=str(data["linkedid"]),
        )
    if op == "finish":
        return FinishSurvey(
            survey_id=int(data["survey_id"]),
            status=SurveyStatus(data["status"]),
            finished_at=_parse_time(data["finished_at"]),
            linkedid=str(data["linkedid"]),
        )
    if op == "decision":
        return RecordDecision(_parse_call(data["call"]), str(data["decision"]))
    if op == "comment":
        return SaveComment(
            survey_id=int(data["survey_id"]),
            comment=Comment(
                file=str(data["file"]),
                format=str(data["format"]),
                duration_seconds=float(data["duration_seconds"]),
                ended_by=str(data["ended_by"]),
                recorded_at=_parse_time(data["recorded_at"]),
            ),
            linkedid=str(data["linkedid"]),
        )
    raise ValueError(f"unknown spooled write {op!r}")
