"""What the adapters need from the outside world, stated as protocols.

Adapters (`ivr/adapters/`: AMI, FastAGI, the web) are handed objects that satisfy these;
they never import `storage` themselves, which keeps them testable with the real
storage or any other implementation, and keeps the wiring in `service.py`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from ivr.core.domain import Answer, CallRecord, Comment, SurveyStart, SurveyStatus
from ivr.core.nps import NpsSummary


class SurveyRepository(Protocol):
    async def save_call(self, call: CallRecord) -> None:
        """Insert or update the call keyed by (call.pbx, call.linkedid).

        Later knowledge wins field by field, but a known value is never replaced
        by an unknown one (None), and the agent chain only ever grows.
        """

    async def begin_survey(self, call: CallRecord, start: SurveyStart) -> int | None:
        """Store the call and open its survey; return the survey id.

        Returns None when (pbx, linkedid) already has a survey: a repeated or
        replayed AGI request must never count twice.
        """

    async def save_answer(self, survey_id: int, answer: Answer) -> None:
        """Write one question's outcome the moment it is known (upsert by question)."""

    async def finish_survey(
        self, survey_id: int, status: SurveyStatus, finished_at: datetime
    ) -> None:
        """Close the survey with the place it stopped."""

    async def save_comment(self, survey_id: int, comment: Comment) -> None:
        """Store the survey's recorded comment (one per survey)."""


# --- Read side: what the reports API and dashboard need -------------------------------
#
# The web adapter receives a `ReportReader` and a `ServiceMetrics`, and the AGI
# route a `SurveyObserver`; none of them imports storage or the service. The
# value types are here rather than in storage so that both sides of a port can
# name them without one importing the other.


class Grouping(enum.StrEnum):
    """How NPS rows are grouped. `all` is one row per question for the whole
    period; time groups are UTC days, ISO weeks (starting Monday) and calendar
    months, each named by its first day."""

    ALL = "all"
    AGENT = "agent"
    QUEUE = "queue"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Duration(enum.StrEnum):
    """Which call duration the NPS-by-duration report buckets."""

    HOLD = "hold"
    TALK = "talk"


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days from `first` to `last`, both included, in the reader's zone.

    Reports work in whole days because their rollups are kept per day; a
    half-open datetime range would promise a precision the rollups cannot keep.
    """

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"period ends ({self.last}) before it starts ({self.first})")


@dataclass(frozen=True, slots=True)
class GroupNps:
    """NPS counts of one question in one group.

    `group` is the agent or queue name (None: calls without one) or, for time
    groupings, the ISO date (YYYY-MM-DD) of the day, week or month's first day.
    """

    group: str | None
    question: str
    summary: NpsSummary


@dataclass(frozen=True, slots=True)
class CellNps:
    """NPS counts of one question for one agent within one queue."""

    agent: str | None
    queue: str | None
    question: str
    summary: NpsSummary


@dataclass(frozen=True, slots=True)
class PairedNps:
    """Both questions' counts over the same surveys: those where the caller
    answered both, so a gap between them is not a difference of samples."""

    agent: str | None
    agent_question: NpsSummary
    company_question: NpsSummary


@dataclass(frozen=True, slots=True)
class BucketNps:
    """NPS counts for calls whose hold or talk time fell in [low, high) seconds.

    `high` None is the open-ended last bucket; `low` None marks the bucket of
    calls whose duration is unknown.
    """

    measure: Duration
    low: int | None
    high: int | None
    question: str
    summary: NpsSummary


@dataclass(frozen=True, slots=True)
class FunnelCounts:
    """The survey funnel of one agent within one queue.

    handled: calls an agent answered; eligible: calls the survey policy decided
    to survey (`calls.policy_decision`); offered and started: surveys begun;
    completed: surveys that ended `completed` or `partial` with at least one
    answered question.
    """

    agent: str | None
    queue: str | None
    handled: int
    eligible: int
    offered: int
    started: int
    completed: int


@dataclass(frozen=True, slots=True)
class ResponseFilter:
    """Which responses to list. `question` None with a score range means either
    question's score is in the range; a bound None is open."""

    period: Period
    agent: str | None = None
    queue: str | None = None
    question: str | None = None
    min_score: int | None = None
    max_score: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseCursor:
    """Where a page of responses stopped: newest first, ties broken by id."""

    started_at: datetime
    survey_id: int


@dataclass(frozen=True, slots=True)
class Response:
    """One survey with at least one answered question, with its call."""

    survey_id: int
    started_at: datetime
    status: SurveyStatus
    pbx: str
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    queue: str | None
    agent: str | None
    hold_seconds: int | None
    talk_seconds: int | None
    agent_score: int | None
    company_score: int | None
    # How the survey came about (as in `ivr-survey export`): the call was
    # transferred, the caller pressed to opt in (None: not asked), who started it.
    transferred: bool = False
    opted_in: bool | None = None
    initiated_by: str | None = None
    # Answers that are not NPS (never counted in it), and the recorded comment:
    # its file stem under [survey] recordings_dir (None once purged) and length.
    csat: int | None = None
    fcr: int | None = None
    ces: int | None = None
    comment_file: str | None = None
    comment_seconds: float | None = None


# The columns of a response in the API, its CSV export and its OpenAPI schema.
RESPONSE_FIELDS = tuple(field.name for field in dataclasses.fields(Response))


@dataclass(frozen=True, slots=True)
class ResponsePage:
    rows: tuple[Response, ...]
    next: ResponseCursor | None


class ReportsUnavailable(Exception):
    """The reports cannot be read right now (database down); one line, no secrets."""


class ReportReader(Protocol):
    """The queries behind the reports API and dashboard.

    Every method raises `ReportsUnavailable` when the database cannot be used.
    Periods and day, week and month groups are days of the reader's `zone`.
    """

    @property
    def zone(self) -> ZoneInfo:
        """Whose days the periods and groups are (`[reports] timezone` by default)."""

    def in_zone(self, zone: ZoneInfo) -> ReportReader:
        """This reader with periods and groups of `zone`'s days (the API's `tz=`)."""

    async def nps(
        self,
        period: Period,
        grouping: Grouping,
        *,
        agent: str | None = None,
        queue: str | None = None,
    ) -> Sequence[GroupNps]:
        """Counts per group and question, over surveys started in the period."""

    async def nps_by_agent_and_queue(self, period: Period) -> Sequence[CellNps]:
        """Counts per (agent, queue, question): what the outlier rule compares."""

    async def agent_vs_company(
        self, period: Period, *, queue: str | None = None
    ) -> Sequence[PairedNps]:
        """Per agent, both questions over the surveys where both were answered."""

    async def nps_by_duration(
        self, period: Period, measure: Duration, *, queue: str | None = None
    ) -> Sequence[BucketNps]:
        """Counts per duration bucket and question, unknown durations last."""

    async def funnel(self, period: Period) -> Sequence[FunnelCounts]:
        """Funnel counts per (agent, queue); calls by call start, surveys by survey start."""

    async def responses(
        self, filters: ResponseFilter, *, after: ResponseCursor | None, limit: int
    ) -> ResponsePage:
        """One page of responses, newest first, and the cursor of the next page."""

    def responses_csv(self, rows: Sequence[Response], *, header: bool) -> str:
        """CSV lines for `rows`, escaped against spreadsheet formulas."""

    async def refresh(self) -> None:
        """Bring the report rollups up to date (cheap when already current)."""


@dataclass(frozen=True, slots=True)
class LatencySnapshot:
    """A latency histogram as Prometheus exposes it.

    `bucket_counts[i]` is the number of observations <= `bounds[i]` seconds
    (cumulative), `count` all observations, `total_seconds` their sum.
    """

    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    count: int
    total_seconds: float


class ServiceMetrics(Protocol):
    """What `/metrics` reports about the running service; every call must be
    cheap and must not do IO, because a scrape must never slow the service."""

    def ami_connected(self) -> bool:
        """True while the AMI session (with several PBXs: every one) is logged in."""

    def ami_connected_by_pbx(self) -> Mapping[str, bool]:
        """PBX name -> whether its AMI session is logged in."""

    def calls_tracked(self) -> int:
        """Calls the tracker holds in memory now."""

    def surveys_by_status(self) -> Mapping[str, int]:
        """Surveys finished since start-up, by `SurveyStatus` value."""

    def agi_sessions_open(self) -> int:
        """FastAGI sessions running now."""

    def agi_connections_refused(self) -> Mapping[str, int]:
        """FastAGI connections closed before a survey, since start-up, by reason
        (address, max_sessions, no_header, evicted, bad_key, unknown_call)."""

    def db_write_latency(self) -> LatencySnapshot:
        """Repository write durations since start-up."""

    def spool_depth(self) -> int:
        """Writes waiting in the local spool for the database to come back."""

    def writes_held(self) -> int:
        """Writes kept in memory because neither the database nor the spool took them."""

    def writes_lost(self) -> int:
        """Writes lost since start-up because not even memory could hold them."""

    def database_down(self) -> bool:
        """True while the database cannot take writes (they go to the spool)."""


class RecordingLookup(Protocol):
    """The recorded comments this process can read (recordings_dir shared with Asterisk).

    Looked up by survey id only, never by a path from a request, so no URL can
    name a file outside the recordings folder.
    """

    async def playable(self, survey_ids: Sequence[int]) -> frozenset[int]:
        """Which of these surveys have a recording file readable here."""

    async def path_of(self, survey_id: int) -> Path | None:
        """The survey's recording file, when it exists here."""


class SurveyObserver(Protocol):
    """Told by the AGI route about each finished survey (the detractor alerts)."""

    def survey_finished(
        self,
        call: CallRecord,
        survey_id: int,
        status: SurveyStatus,
        answers: Sequence[Answer],
    ) -> None:
        """Must return at once and never raise: the caller may still be on the line."""


# --- Signed-out sessions: shared by every node and kept across restarts ----------------


class RevocationKind(enum.StrEnum):
    """What a revocation ends: one session (a logout), every session of one user
    signed before it, or everyone's."""

    SESSION = "session"
    USER = "user"
    EVERYONE = "everyone"


@dataclass(frozen=True, slots=True)
class Revocation:
    """`subject` is the session id, the user name, or "" for everyone.

    A session revocation can be forgotten once the cookie would have expired
    anyway (`expires_at`); a user's or everyone's has no end (None), because a
    cookie signed before it under a longer `session_hours` may still be alive.
    """

    kind: RevocationKind
    subject: str
    revoked_at: datetime
    expires_at: datetime | None


class RevocationStore(Protocol):
    """Where the web keeps the sessions that were ended, so that a logout on one
    node, or `ivr-survey web sessions revoke`, holds on every node and after a
    restart."""

    async def record(self, revocation: Revocation) -> None:
        """Store it; raises when the database cannot take it now."""

    async def newer_than(self, last_seen: int, now: datetime) -> Sequence[tuple[int, Revocation]]:
        """The unexpired revocations stored after the one numbered `last_seen`
        (0: all of them), oldest first, each with its number."""

    async def forget_expired(self, now: datetime) -> int:
        """Drop the revocations of sessions that have expired; how many went."""
