"""Recorded comments in storage: saved once per survey, purged by age, on both databases."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import Comment
from storage.recordings import RecordingPurge, purge_recordings, recording_path
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import PBX, at, call, start


def comment(file: str, seconds: float) -> Comment:
    return Comment(
        file=file, format="wav", duration_seconds=4.5, ended_by="dtmf", recorded_at=at(seconds)
    )


async def survey_with_comment(repository: CommittedWrites, linkedid: str, recorded: Comment) -> int:
    record = call(linkedid)
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None
    await repository.save_comment(survey_id, recorded)
    return survey_id


async def test_a_comment_reads_back_with_its_survey(repository: CommittedWrites) -> None:
    """File stem, format, duration, how it ended and when: all kept."""
    recorded = comment(f"{PBX}-1.1", 200)
    await survey_with_comment(repository, "1.1", recorded)
    survey = await repository.get_survey(PBX, "1.1")
    assert survey is not None
    assert recorded == survey.comment


async def test_a_second_comment_for_a_survey_is_ignored(repository: CommittedWrites) -> None:
    """One comment per survey: a replayed write keeps the first."""
    first = comment(f"{PBX}-1.2", 200)
    survey_id = await survey_with_comment(repository, "1.2", first)
    await repository.save_comment(survey_id, comment("other", 300))
    survey = await repository.get_survey(PBX, "1.2")
    assert survey is not None
    assert first == survey.comment


async def test_purge_deletes_old_files_and_clears_their_links(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """Older than the cut-off: file deleted (or counted missing), link cleared; newer: kept."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "old-1.wav").write_bytes(b"RIFF")
    (recordings / "new-1.wav").write_bytes(b"RIFF")
    await survey_with_comment(repository, "2.1", comment("old-1", 100))
    await survey_with_comment(repository, "2.2", comment("old-gone", 150))
    await survey_with_comment(repository, "2.3", comment("new-1", 500))

    result = await purge_recordings(
        database_sessions, before=at(400), recordings_dir=str(recordings)
    )

    kept = [await repository.get_survey(PBX, linkedid) for linkedid in ("2.1", "2.3")]
    expected = (
        RecordingPurge(cleared=2, deleted=1, missing=1),
        ["new-1.wav"],
        [("", 4.5), ("new-1", 4.5)],
    )
    actual = (
        result,
        sorted(path.name for path in recordings.iterdir()),
        [(s.comment.file, s.comment.duration_seconds) for s in kept if s and s.comment],
    )
    assert expected == actual


async def test_purge_without_a_visible_folder_counts_the_files_left_behind(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """Recordings on the Asterisk host only: links cleared, files reported as unreachable."""
    await survey_with_comment(repository, "3.1", comment("old", 100))
    result = await purge_recordings(
        database_sessions, before=at(400), recordings_dir=str(tmp_path / "not-shared")
    )
    again = await purge_recordings(
        database_sessions, before=at(400), recordings_dir=str(tmp_path / "not-shared")
    )
    assert (RecordingPurge(cleared=1, unreachable=1), RecordingPurge()) == (result, again)


def test_recording_paths_never_leave_the_folder() -> None:
    """A stored name that is not a plain stem gives no path at all."""
    expected = [Path("/rec/pbx-1.2.wav"), None, None, None, None]
    actual = [
        recording_path("/rec", "pbx-1.2", "wav"),
        recording_path("/rec", "../etc/passwd", "wav"),
        recording_path("/rec", ".hidden", "wav"),
        recording_path("/rec", "x", "wav/../../y"),
        recording_path("", "x", "wav"),
    ]
    assert expected == actual
