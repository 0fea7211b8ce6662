"""Initial schema: calls, their agent chain, surveys and answers.

Written by hand to match storage/models.py; tests/storage compares the two with
Alembic's autogenerate on SQLite and PostgreSQL. Enum values and constraint
names are spelled out literally, and names are wrapped in `op.f()` so that the
models' naming convention (which Alembic applies to `op.create_table`) is not
applied a second time: this revision keeps meaning what it meant when it was
written, whatever the models later become.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HANGUP_SIDES = "'agent', 'caller', 'transfer', 'unknown'"
_STATUSES = "'in_progress', 'completed', 'partial', 'no_answer', 'hung_up'"


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx", sa.Text(), nullable=False),
        sa.Column("linkedid", sa.Text(), nullable=False),
        sa.Column("caller_uniqueid", sa.Text(), nullable=True),
        sa.Column("caller_channel", sa.Text(), nullable=True),
        sa.Column("caller_number", sa.Text(), nullable=True),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("queue", sa.Text(), nullable=True),
        sa.Column("agent_name", sa.Text(), nullable=True),
        sa.Column("agent_interface", sa.Text(), nullable=True),
        sa.Column("hold_seconds", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("ended_by", sa.String(16), nullable=True),
        sa.Column("abandoned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("transferred", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("partial", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("pbx", "linkedid", name=op.f("uq_calls_pbx_linkedid")),
        sa.CheckConstraint(f"ended_by IN ({_HANGUP_SIDES})", name=op.f("ck_calls_ended_by")),
        sa.CheckConstraint("hold_seconds >= 0", name=op.f("ck_calls_hold_seconds")),
        sa.CheckConstraint("talk_seconds >= 0", name=op.f("ck_calls_talk_seconds")),
    )
    op.create_index(op.f("ix_calls_agent_name"), "calls", ["agent_name"])
    op.create_index(op.f("ix_calls_queue"), "calls", ["queue"])
    op.create_index(op.f("ix_calls_started_at"), "calls", ["started_at"])

    op.create_table(
        "call_agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("interface", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_seconds", sa.Integer(), nullable=True),
        sa.Column("ring_seconds", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("ended_by", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_agents")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_agents_call_id_calls"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("call_id", "position", name=op.f("uq_call_agents_call_id_position")),
        sa.CheckConstraint("position >= 0", name=op.f("ck_call_agents_position")),
        sa.CheckConstraint(f"ended_by IN ({_HANGUP_SIDES})", name=op.f("ck_call_agents_ended_by")),
    )

    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("uniqueid", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opted_in", sa.Boolean(), nullable=True),
        sa.Column("initiated_by", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_surveys_call_id_calls"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("call_id", name=op.f("uq_surveys_call_id")),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name=op.f("ck_surveys_status")),
    )
    op.create_index(op.f("ix_surveys_started_at"), "surveys", ["started_at"])

    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(32), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_answers_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("survey_id", "question", name=op.f("uq_answers_survey_id_question")),
        sa.CheckConstraint("value >= 0 AND value <= 10", name=op.f("ck_answers_value")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_answers_attempts")),
    )


def downgrade() -> None:
    op.drop_table("answers")
    op.drop_index(op.f("ix_surveys_started_at"), table_name="surveys")
    op.drop_table("surveys")
    op.drop_table("call_agents")
    op.drop_index(op.f("ix_calls_started_at"), table_name="calls")
    op.drop_index(op.f("ix_calls_queue"), table_name="calls")
    op.drop_index(op.f("ix_calls_agent_name"), table_name="calls")
    op.drop_table("calls")
