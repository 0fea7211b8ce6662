"""Value types shared by the pure core, the adapters and storage.

They live in one module with no imports beyond the standard library so that
`storage/` can speak in the same terms as `ivr/` without depending on any
adapter, and so the pure modules stay free of IO.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event as Asterisk sent it, tagged with the PBX it came from.

    Header names keep Asterisk's exact spelling (CEL says `CallerIDnum`, channel
    events `CallerIDNum`); `get` matches exactly first, then case-insensitively,
    because both spellings occur on the wire for the same datum.
    `received_at` is the service's clock (epoch seconds): AMI events carry no
    timestamp unless `timestampevents=yes`, which we cannot count on.
    """

    pbx: str
    name: str
    headers: Mapping[str, str]
    received_at: float
    repeated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        value = self.headers.get(key)
        if value is not None:
            return value
        lowered = key.lower()
        for name, candidate in self.headers.items():
            if name.lower() == lowered:
                return candidate
        return default

    @property
    def linkedid(self) -> str:
        return self.get("Linkedid")


class HangupSide(enum.StrEnum):
    """Who ended the agent conversation, from AgentComplete's `Reason`."""

    AGENT = "agent"
    CALLER = "caller"
    TRANSFER = "transfer"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """One agent who spoke with the caller, in the order they connected.

    Times are whole seconds as Asterisk reports them in AgentConnect/AgentComplete.
    `talk_seconds` and `ended_by` stay None until that leg's AgentComplete arrives.
    `queue` is None for a leg seen only through a direct Dial (attended transfer
    to a target outside any queue), where no Agent* event names it.
    """

    name: str
    interface: str
    queue: str | None
    channel: str
    connected_at: float
    hold_seconds: int | None = None
    ring_seconds: int | None = None
    talk_seconds: int | None = None
    ended_by: HangupSide | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What the service knows about one call, keyed by (pbx, linkedid).

    `agents` is the chain of agents in the order they connected; the last one
    is the agent the survey credits. `hold_seconds` is the caller's wait in the
    queue that connected the last agent, `talk_seconds` the sum over all legs.
    `partial` marks a record rebuilt from channel variables or a resync rather
    than from the events of the whole call.
    `caller_key` is the caller's identity for cooldowns and opt-outs
    (`ivr.core.privacy`), set just before the record is stored.
    """

    pbx: str
    linkedid: str
    caller_uniqueid: str | None = None
    caller_channel: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    caller_key: str | None = None
    queue: str | None = None
    agents: tuple[AgentLeg, ...] = ()
    hold_seconds: int | None = None
    talk_seconds: int | None = None
    ended_by: HangupSide | None = None
    abandoned: bool = False
    transferred: bool = False
    partial: bool = False
    started_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None

    @property
    def last_agent(self) -> AgentLeg | None:
        return self.agents[-1] if self.agents else None


class SurveyStatus(enum.StrEnum):
    """Where a survey stopped.

    completed: every question was asked to its end (answered or given up on).
    partial:   the caller hung up after at least one answer.
    no_answer: every question was asked to its end but none got a valid answer.
    hung_up:   the caller hung up before giving any answer.
    in_progress: the survey is still running.
    interrupted: the service stopped under it (a crash, a kill); set at the next
               start, and counted like partial, since the answers given are stored.
    """

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    NO_ANSWER = "no_answer"
    HUNG_UP = "hung_up"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Answer:
    """One question's outcome. `value` None means asked but never answered (never 0)."""

    question: str
    value: int | None
    attempts: int
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class SurveyStart:
    """What the AGI route needs to record that a survey began on a channel."""

    pbx: str
    linkedid: str
    channel: str
    uniqueid: str
    language: str
    started_at: datetime
    opted_in: bool | None = None
    initiated_by: str | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    """A caller's recorded comment: `file` is the stem under `[survey] recordings_dir`.

    `ended_by` is how RECORD FILE stopped: dtmf (#), timeout (time limit or
    silence) or hangup, in which case Asterisk still keeps the file.
    """

    file: str
    format: str
    duration_seconds: float
    ended_by: str
    recorded_at: datetime
