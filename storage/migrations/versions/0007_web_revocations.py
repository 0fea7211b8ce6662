"""Signed-out dashboard sessions, kept in the database.

A logout, or `ivr-survey web sessions revoke`, used to be remembered by the
one process that saw it, until it restarted; stored here, it holds on every
node and after a restart (`storage.revocations`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_revocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_revocations")),
        sa.CheckConstraint(
            "kind IN ('session', 'user', 'everyone')", name=op.f("ck_web_revocations_kind")
        ),
    )
    op.create_index(op.f("ix_web_revocations_expires_at"), "web_revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_web_revocations_expires_at"), table_name="web_revocations")
    op.drop_table("web_revocations")
