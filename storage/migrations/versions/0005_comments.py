"""Recorded comments: one row per survey naming the file Asterisk wrote.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("format", sa.String(16), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("ended_by", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_comments_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("survey_id", name=op.f("uq_comments_survey_id")),
        sa.CheckConstraint("duration_seconds >= 0", name=op.f("ck_comments_duration_seconds")),
        sa.CheckConstraint(
            "ended_by IN ('dtmf', 'timeout', 'hangup')", name=op.f("ck_comments_ended_by")
        ),
    )


def downgrade() -> None:
    op.drop_table("comments")
