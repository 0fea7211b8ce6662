"""The database schema, declared once for the ORM, the queries and Alembic.

The migration in `migrations/versions/` is written by hand and a test compares it
with these declarations on SQLite and PostgreSQL, so the two cannot drift apart
unnoticed. Constraint names come from a naming convention because Alembic needs
stable names to alter or drop a constraint later, and SQLite cannot rename one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ivr.core.domain import HangupSide, SurveyStatus
from ivr.ports import RevocationKind

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The CHECKs below follow the domain enums; the migration spells the same values
# out literally, because a migration must keep meaning what it meant when written.
HANGUP_SIDES = tuple(side.value for side in HangupSide)
SURVEY_STATUSES = tuple(status.value for status in SurveyStatus)
REVOCATION_KINDS = tuple(kind.value for kind in RevocationKind)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores `timestamptz` and hands back aware values, but SQLite keeps
    text without an offset and hands back naive values. Converting to UTC on the
    way in makes the SQLite text sort and compare correctly, and tagging UTC on
    the way out gives both dialects the same Python values. A naive datetime is
    refused rather than guessed at: local time would silently shift every report.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"refusing to store a naive datetime {value.isoformat()}: give a timezone"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL text for a CHECK that pins a column to the values of a domain enum."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Call(Base):
    """One call as the tracker knows it, keyed by (pbx, linkedid).

    The last agent's name and interface are copied here from `call_agents`
    because every report groups by them and a join to the chain's last row for
    each call would cost a correlated subquery.
    """

    __tablename__ = "calls"
    __table_args__ = (
        sa.UniqueConstraint("pbx", "linkedid"),
        sa.CheckConstraint(_in("ended_by", HANGUP_SIDES), name="ended_by"),
        sa.CheckConstraint("hold_seconds >= 0", name="hold_seconds"),
        sa.CheckConstraint("talk_seconds >= 0", name="talk_seconds"),
        sa.Index("ix_calls_agent_name", "agent_name"),
        sa.Index("ix_calls_queue", "queue"),
        sa.Index("ix_calls_started_at", "started_at"),
        # Migration 0004: cooldowns and opt-outs look callers up by key on every PBX.
        sa.Index("ix_calls_caller_key", "caller_key"),
        # Covering (migration 0003): an agent's calls of a period, read from the
        # index alone when the responses list looks for a rare score.
        sa.Index(
            "ix_calls_agent_name_started_at",
            "agent_name",
            "started_at",
            postgresql_include=["id"],
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    pbx: Mapped[str] = mapped_column(sa.Text)
    linkedid: Mapped[str] = mapped_column(sa.Text)
    caller_uniqueid: Mapped[str | None] = mapped_column(sa.Text)
    caller_channel: Mapped[str | None] = mapped_column(sa.Text)
    caller_number: Mapped[str | None] = mapped_column(sa.Text)
    caller_name: Mapped[str | None] = mapped_column(sa.Text)
    # Migration 0004. caller_key: the caller's number normalised, or its HMAC
    # (ivr.core.privacy). policy_decision: the survey policy's reason (ivr.core.policy.Reason)
    # for the call's FastAGI request; NULL when the call never reached the survey.
    caller_key: Mapped[str | None] = mapped_column(sa.Text)
    policy_decision: Mapped[str | None] = mapped_column(sa.String(32))
    queue: Mapped[str | None] = mapped_column(sa.Text)
    agent_name: Mapped[str | None] = mapped_column(sa.Text)
    agent_interface: Mapped[str | None] = mapped_column(sa.Text)
    hold_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    talk_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    ended_by: Mapped[str | None] = mapped_column(sa.String(16))
    abandoned: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    transferred: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    partial: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=sa.func.now())


class CallAgent(Base):
    """One agent leg of a call, `position` 0 being the first agent connected."""

    __tablename__ = "call_agents"
    __table_args__ = (
        sa.UniqueConstraint("call_id", "position"),
        sa.CheckConstraint("position >= 0", name="position"),
        sa.CheckConstraint(_in("ended_by", HANGUP_SIDES), name="ended_by"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.Text)
    interface: Mapped[str] = mapped_column(sa.Text)
    queue: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str] = mapped_column(sa.Text)
    connected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    hold_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    ring_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    talk_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    ended_by: Mapped[str | None] = mapped_column(sa.String(16))


class Survey(Base):
    """The survey of one call; the UNIQUE call_id is what makes a replayed AGI
    request unable to open a second survey for the same call."""

    __tablename__ = "surveys"
    __table_args__ = (
        sa.UniqueConstraint("call_id"),
        sa.CheckConstraint(_in("status", SURVEY_STATUSES), name="status"),
        sa.Index("ix_surveys_started_at", "started_at"),
        sa.Index(
            "ix_surveys_call_id_covering",
            "call_id",
            postgresql_include=["id", "started_at", "status"],
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.Text)
    uniqueid: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # From the dialplan (dialplan/README.md): True when the caller opted in
    # before the queue, NULL when never asked; "agent" when the agent sent the
    # caller to the survey, NULL when it started on its own.
    opted_in: Mapped[bool | None] = mapped_column(sa.Boolean)
    initiated_by: Mapped[str | None] = mapped_column(sa.String(16))


class SurveyAnswer(Base):
    """One question's outcome; `value` NULL means asked and never answered.

    The CHECK keeps the 0..10 rule in the database itself, so no code path (nor a
    hand-written fix-up query) can store a score the NPS arithmetic would reject.
    """

    __tablename__ = "answers"
    __table_args__ = (
        sa.UniqueConstraint("survey_id", "question"),
        sa.CheckConstraint("value >= 0 AND value <= 10", name="value"),
        sa.CheckConstraint("attempts >= 0", name="attempts"),
        sa.Index(
            "ix_answers_survey_id_question_covering",
            "survey_id",
            "question",
            postgresql_include=["value"],
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(sa.ForeignKey("surveys.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[int | None] = mapped_column(sa.SmallInteger)
    attempts: Mapped[int] = mapped_column(sa.SmallInteger)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OptOut(Base):
    """A caller who asked never to be surveyed (migration 0004).

    `number` is NULL in anonymous mode: the key alone is enough to refuse.
    """

    __tablename__ = "optouts"

    caller_key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    number: Mapped[str | None] = mapped_column(sa.Text)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SurveyComment(Base):
    """A survey's recorded comment (migration 0005): the file Asterisk wrote.

    `file` is a stem under `[survey] recordings_dir`, never a path, so no value
    stored here can point outside that folder. A purge clears `file` and
    `format` and keeps the row, so reports still know a comment was left.
    """

    __tablename__ = "comments"
    __table_args__ = (
        sa.UniqueConstraint("survey_id"),
        sa.CheckConstraint("duration_seconds >= 0", name="duration_seconds"),
        sa.CheckConstraint("ended_by IN ('dtmf', 'timeout', 'hangup')", name="ended_by"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(sa.ForeignKey("surveys.id", ondelete="CASCADE"))
    file: Mapped[str | None] = mapped_column(sa.Text)
    format: Mapped[str | None] = mapped_column(sa.String(16))
    duration_seconds: Mapped[float] = mapped_column(sa.Float)
    ended_by: Mapped[str] = mapped_column(sa.String(16))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Report rollups (migration 0002), maintained by storage/analytics.py ---------------


class NpsDaily(Base):
    """Answer counts per UTC day of the survey's start, agent, queue and question.

    `grain` 'day' rows hold one day (`day`); 'month' rows the sum of a month's
    day rows (`day` is the month's first day), kept for months before the
    cut-off's month only; 'total' rows a day of all agents and queues together.
    The paired counts only take surveys where both questions were answered:
    that is what compares the agent with the company on the same calls.
    """

    __tablename__ = "report_nps_daily"

    grain: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    agent: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    queue: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    question: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    promoters: Mapped[int] = mapped_column(sa.Integer)
    passives: Mapped[int] = mapped_column(sa.Integer)
    detractors: Mapped[int] = mapped_column(sa.Integer)
    paired_promoters: Mapped[int] = mapped_column(sa.Integer)
    paired_passives: Mapped[int] = mapped_column(sa.Integer)
    paired_detractors: Mapped[int] = mapped_column(sa.Integer)


class DurationDaily(Base):
    """Answer counts per UTC day, queue, question and hold or talk time bucket."""

    __tablename__ = "report_duration_daily"

    grain: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    queue: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    question: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    measure: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    promoters: Mapped[int] = mapped_column(sa.Integer)
    passives: Mapped[int] = mapped_column(sa.Integer)
    detractors: Mapped[int] = mapped_column(sa.Integer)


class FunnelDaily(Base):
    """Funnel counts per UTC day, agent and queue (see `FunnelCounts`)."""

    __tablename__ = "report_funnel_daily"

    grain: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    agent: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    queue: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    handled: Mapped[int] = mapped_column(sa.Integer)
    eligible: Mapped[int] = mapped_column(sa.Integer)
    offered: Mapped[int] = mapped_column(sa.Integer)
    started: Mapped[int] = mapped_column(sa.Integer)
    completed: Mapped[int] = mapped_column(sa.Integer)


class RollupState(Base):
    """One row (id 1): the rollups count what started before `complete_before`
    (None: never built); `settled_at` is the last recompute of the settle days;
    `zone` is the IANA zone whose days they count (migration 0008), so a
    changed `[reports] timezone` is noticed and the rollups rebuilt."""

    __tablename__ = "report_rollup_state"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    complete_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    zone: Mapped[str] = mapped_column(sa.String(64), server_default="UTC")


class WebRevocation(Base):
    """A signed-out dashboard session, or every session of a user (or of
    everyone) signed before `revoked_at` (migration 0007; see `ivr.ports.Revocation`).

    Read by every node every few seconds from the last id it has seen, so the
    id only ever grows: a user revoked again gets a new row.
    """

    __tablename__ = "web_revocations"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", REVOCATION_KINDS), name="kind"),
        sa.Index("ix_web_revocations_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.Text)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
