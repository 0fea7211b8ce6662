"""Purging recorded comments: delete the files, keep the rows.

A recording is personal data (the caller's voice), so it is kept only as long
as the admin decides; the row stays, with its duration and how it ended, so
reports still know a comment was left. Files are deleted only where this
process can see them (`[survey] recordings_dir` shared with Asterisk at the
same path); otherwise the links are cleared and the count of files left on
the Asterisk host is returned for the caller to report.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.database import database_errors
from storage.models import SurveyComment

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_BATCH = 500


@dataclass(frozen=True, slots=True)
class RecordingPurge:
    """What a purge did.

    cleared: comment rows whose file link was cleared;
    deleted: files removed from `recordings_dir`;
    missing: files already gone from a visible `recordings_dir`;
    unreachable: files left on the Asterisk host (the folder is not visible here).
    """

    cleared: int = 0
    deleted: int = 0
    missing: int = 0
    unreachable: int = 0


def recording_path(recordings_dir: str, file: str, file_format: str) -> Path | None:
    """`<recordings_dir>/<file>.<format>`, or None for a name that is not a plain stem.

    The names stored are built safe (ivr.adapters.fastagi.recordings.file_stem); checking again
    here keeps a hand-edited row from ever pointing outside the folder.
    """
    if not recordings_dir or not _SAFE_NAME.match(file) or not _SAFE_NAME.match(file_format):
        return None
    return Path(recordings_dir) / f"{file}.{file_format}"


async def purge_recordings(
    sessions: async_sessionmaker[AsyncSession], *, before: datetime, recordings_dir: str
) -> RecordingPurge:
    """Delete the recordings made before `before` and clear their links; return the counts."""
    visible = bool(recordings_dir) and await asyncio.to_thread(Path(recordings_dir).is_dir)
    total = RecordingPurge()
    while True:
        async with database_errors("read the recordings to purge"), sessions() as session:
            rows = (
                await session.execute(
                    sa.select(SurveyComment.id, SurveyComment.file, SurveyComment.format)
                    .where(SurveyComment.recorded_at < before, SurveyComment.file.is_not(None))
                    .order_by(SurveyComment.id)
                    .limit(_BATCH)
                )
            ).all()
        if not rows:
            return total
        deleted, missing = 0, 0
        if visible:
            deleted, missing = await asyncio.to_thread(
                _delete_files, recordings_dir, [(row.file or "", row.format or "") for row in rows]
            )
        async with database_errors("clear the purged recordings"), sessions.begin() as session:
            await session.execute(
                sa.update(SurveyComment)
                .where(SurveyComment.id.in_([row.id for row in rows]))
                .values(file=None, format=None)
            )
        total = RecordingPurge(
            cleared=total.cleared + len(rows),
            deleted=total.deleted + deleted,
            missing=total.missing + missing,
            unreachable=total.unreachable + (0 if visible else len(rows)),
        )


def _delete_files(recordings_dir: str, files: Sequence[tuple[str, str]]) -> tuple[int, int]:
    deleted = missing = 0
    for file, file_format in files:
        path = recording_path(recordings_dir, file, file_format)
        if path is None:
            missing += 1
            continue
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            missing += 1
    return deleted, missing


class SqlRecordings:
    """`ivr.ports.RecordingLookup`: the comments table, then the file under `recordings_dir`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], recordings_dir: str) -> None:
        self._sessions = sessions
        self._recordings_dir = recordings_dir

    async def _paths(self, survey_ids: Sequence[int]) -> dict[int, Path]:
        if not self._recordings_dir or not survey_ids:
            return {}
        async with database_errors("look up recorded comments"), self._sessions() as session:
            rows = (
                await session.execute(
                    sa.select(
                        SurveyComment.survey_id, SurveyComment.file, SurveyComment.format
                    ).where(
                        SurveyComment.survey_id.in_(list(survey_ids)),
                        SurveyComment.file.is_not(None),
                    )
                )
            ).all()
        paths = {
            row.survey_id: recording_path(self._recordings_dir, row.file or "", row.format or "")
            for row in rows
        }
        found = {survey_id: path for survey_id, path in paths.items() if path is not None}
        present = await asyncio.to_thread(
            lambda: {survey_id for survey_id, path in found.items() if path.is_file()}
        )
        return {survey_id: path for survey_id, path in found.items() if survey_id in present}

    async def playable(self, survey_ids: Sequence[int]) -> frozenset[int]:
        return frozenset(await self._paths(survey_ids))

    async def path_of(self, survey_id: int) -> Path | None:
        return (await self._paths([survey_id])).get(survey_id)
