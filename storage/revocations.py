"""The signed-out dashboard sessions every node reads (`ivr.ports.RevocationStore`).

Written outside the group-commit writer on purpose: that writer is for survey
data, which it may hold or spool through an outage, while a logout must either
be stored now or be said to hold on this node only (`ivr.adapters.web.revocation_sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ports import Revocation, RevocationKind
from storage.database import database_errors
from storage.models import WebRevocation

# A node that has been away reads at most this many rows per poll; it reads
# the rest at the next one.
READ_BATCH = 10_000


class SqlRevocations:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, revocation: Revocation) -> None:
        """A user's or everyone's revocation replaces the older ones it covers:
        only the latest cut-off matters, so their rows do not pile up."""
        async with database_errors("store the signed-out session"), self._sessions.begin() as db:
            if revocation.kind is not RevocationKind.SESSION:
                await db.execute(
                    sa.delete(WebRevocation).where(
                        WebRevocation.kind == revocation.kind.value,
                        WebRevocation.subject == revocation.subject,
                    )
                )
            db.add(
                WebRevocation(
                    kind=revocation.kind.value,
                    subject=revocation.subject,
                    revoked_at=revocation.revoked_at,
                    expires_at=revocation.expires_at,
                )
            )

    async def newer_than(self, last_seen: int, now: datetime) -> Sequence[tuple[int, Revocation]]:
        statement = (
            sa.select(WebRevocation)
            .where(
                WebRevocation.id > last_seen,
                sa.or_(WebRevocation.expires_at.is_(None), WebRevocation.expires_at >= now),
            )
            .order_by(WebRevocation.id)
            .limit(READ_BATCH)
        )
        async with database_errors("read the signed-out sessions"), self._sessions() as db:
            rows = (await db.scalars(statement)).all()
        return [
            (
                row.id,
                Revocation(
                    kind=RevocationKind(row.kind),
                    subject=row.subject,
                    revoked_at=row.revoked_at,
                    expires_at=row.expires_at,
                ),
            )
            for row in rows
        ]

    async def forget_expired(self, now: datetime) -> int:
        """Drop the sessions that would have expired anyway; how many went."""
        async with database_errors("forget expired sessions"), self._sessions.begin() as db:
            result = await db.execute(
                sa.delete(WebRevocation).where(WebRevocation.expires_at < now)
            )
        return int(getattr(result, "rowcount", 0) or 0)
