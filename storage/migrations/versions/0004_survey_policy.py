"""Survey policy: each call's decision, the caller key, and the opt-out list.

`calls.policy_decision` holds the policy's reason (ivr.core.policy.Reason) for the
call's FastAGI request, NULL when the call never reached the survey.
`calls.caller_key` is the caller's normalised number or its HMAC (ivr.core.privacy),
indexed: cooldowns and opt-outs match callers on it across PBXs.

Calls stored before this revision were never decided. The reports used to
derive "eligible" from the call (an agent answered, not abandoned, not ended
by the caller); those rows are given that derivation once here, as the
decision 'eligible', so the funnel keeps its past figures and from now on
counts `policy_decision = 'eligible'` exactly. Their other rows stay NULL.
Their `caller_key` stays NULL too (SQL cannot compute the HMAC), so
cooldowns start counting from the calls stored after this revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("caller_key", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("policy_decision", sa.String(32), nullable=True))
    op.create_index(op.f("ix_calls_caller_key"), "calls", ["caller_key"])
    op.execute(
        "UPDATE calls SET policy_decision = 'eligible' "
        "WHERE agent_name IS NOT NULL AND NOT abandoned "
        "AND (ended_by IS NULL OR ended_by <> 'caller')"
    )
    op.create_table(
        "optouts",
        sa.Column("caller_key", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller_key", name=op.f("pk_optouts")),
    )


def downgrade() -> None:
    op.drop_table("optouts")
    op.drop_index(op.f("ix_calls_caller_key"), table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("policy_decision")
        batch.drop_column("caller_key")
