"""Surveys the service stopped under: status `interrupted`.

A survey still `in_progress` when the service starts was running in a process
that died (SIGKILL, a crash, a power cut); its answers are stored, and it is
now marked `interrupted` (`storage.writer`), counted like `partial`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "'in_progress', 'completed', 'partial', 'no_answer', 'hung_up'"
_AFTER = f"{_BEFORE}, 'interrupted'"


def _statuses(allowed: str) -> None:
    with op.batch_alter_table("surveys") as batch:
        batch.drop_constraint(op.f("ck_surveys_status"), type_="check")
        batch.create_check_constraint(op.f("ck_surveys_status"), f"status IN ({allowed})")


def upgrade() -> None:
    _statuses(_AFTER)


def downgrade() -> None:
    op.execute("UPDATE surveys SET status = 'partial' WHERE status = 'interrupted'")
    _statuses(_BEFORE)
