"""Covering indexes for the responses list filtered by agent and a rare score.

Over a year of history the list reads an agent's ~40k calls, their surveys and
answers; with these indexes PostgreSQL reads all three from the indexes alone
instead of one random heap page per row (bench/reports_5m.py: 826 ms before).
SQLite ignores INCLUDE and gets plain indexes on the same columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_calls_agent_name_started_at",
        "calls",
        ["agent_name", "started_at"],
        postgresql_include=["id"],
    )
    op.create_index(
        "ix_surveys_call_id_covering",
        "surveys",
        ["call_id"],
        postgresql_include=["id", "started_at", "status"],
    )
    op.create_index(
        "ix_answers_survey_id_question_covering",
        "answers",
        ["survey_id", "question"],
        postgresql_include=["value"],
    )


def downgrade() -> None:
    op.drop_index("ix_answers_survey_id_question_covering", table_name="answers")
    op.drop_index("ix_surveys_call_id_covering", table_name="surveys")
    op.drop_index("ix_calls_agent_name_started_at", table_name="calls")
