"""The time zone whose days the report rollups count.

Reports now count the days of `[reports] timezone`, not UTC days. A rollup
row of a Tehran day holds other surveys than the row of the same UTC day, so
the rollups must say which zone they were built for: when the configured zone
differs, the refresh rebuilds them (`storage.rollup_refresh`) and, until it
has, the readers compute from the raw rows. Rollups built before this
revision counted UTC days, hence the default.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "report_rollup_state",
        sa.Column("zone", sa.String(64), nullable=False, server_default="UTC"),
    )


def downgrade() -> None:
    with op.batch_alter_table("report_rollup_state") as batch:
        batch.drop_column("zone")
