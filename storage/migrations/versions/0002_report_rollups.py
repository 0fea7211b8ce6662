"""Report rollups: per-day counts behind the reports API and dashboard.

Three tables of counts per UTC day and per month (NPS per agent/queue/question,
NPS per duration bucket, the survey funnel) and a one-row cut-off. They start empty:
the service fills them on its first refresh (`storage.analytics`), which keeps
this upgrade instant on a database with years of surveys. Written by hand to
match the declarations in storage/analytics.py, names wrapped in `op.f()` as in
0001.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counts(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "report_nps_daily",
        sa.Column("grain", sa.String(5), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("question", sa.String(32), nullable=False),
        *_counts(
            "promoters",
            "passives",
            "detractors",
            "paired_promoters",
            "paired_passives",
            "paired_detractors",
        ),
        sa.PrimaryKeyConstraint(
            "grain", "day", "agent", "queue", "question", name=op.f("pk_report_nps_daily")
        ),
    )
    op.create_table(
        "report_duration_daily",
        sa.Column("grain", sa.String(5), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("question", sa.String(32), nullable=False),
        sa.Column("measure", sa.String(8), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        *_counts("promoters", "passives", "detractors"),
        sa.PrimaryKeyConstraint(
            "grain",
            "day",
            "queue",
            "question",
            "measure",
            "bucket",
            name=op.f("pk_report_duration_daily"),
        ),
    )
    op.create_table(
        "report_funnel_daily",
        sa.Column("grain", sa.String(5), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        *_counts("handled", "eligible", "offered", "started", "completed"),
        sa.PrimaryKeyConstraint(
            "grain", "day", "agent", "queue", name=op.f("pk_report_funnel_daily")
        ),
    )
    op.create_table(
        "report_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complete_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("report_rollup_state")
    op.drop_table("report_funnel_daily")
    op.drop_table("report_duration_daily")
    op.drop_table("report_nps_daily")
