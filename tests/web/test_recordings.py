"""Recorded comments on the dashboard: admins listen, viewers see that one exists; ids only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.adapters.web import FixedMetrics, create_app
from ivr.core.domain import Comment
from storage.analytics import SqlReportReader
from storage.recordings import SqlRecordings
from tests.helpers.web import ADMIN, MARCH, VIEWER, settings
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import answer, at, call, leg, start
from tests.web.scenario import NOW
from tests.web.webdriver import metrics

Client = TestClient[web.Request, web.Application]
AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt "


async def detractor(repository: CommittedWrites, linkedid: str, file: str, seconds: float) -> int:
    record = call(linkedid, agents=(leg("Alice", 1001, connected=30 + seconds),))
    survey_id = await repository.begin_survey(record, start(record, seconds=120 + seconds))
    assert survey_id is not None
    await repository.save_answer(survey_id, answer("agent", 2, seconds=130 + seconds))
    await repository.save_comment(
        survey_id,
        Comment(file=file, format="wav", duration_seconds=4.0, ended_by="dtmf",
                recorded_at=at(140 + seconds)),
    )  # fmt: skip
    return survey_id


@pytest.fixture
async def client(
    repository: CommittedWrites,
    database_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> AsyncIterator[tuple[Client, int, int]]:
    """Two detractors of Alice with comments: the first file is here, the second is not."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "pbx-lab-1.1.wav").write_bytes(AUDIO)
    (tmp_path / "secret.wav").write_bytes(b"not yours")
    here = await detractor(repository, "1.1", "pbx-lab-1.1", 0)
    elsewhere = await detractor(repository, "1.2", "pbx-lab-1.2", 60)
    app = create_app(
        settings(),
        SqlReportReader(database_sessions, clock=lambda: NOW),
        FixedMetrics(),
        today=NOW.date,
        refresh_rollups=False,
        recordings=SqlRecordings(database_sessions, str(recordings)),
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, here, elsewhere


async def test_admin_hears_the_recording_served_by_survey_id(
    client: tuple[Client, int, int],
) -> None:
    """The file's bytes, typed as audio, for the survey id."""
    http, here, _ = client
    async with http.get(f"/recordings/{here}", headers=ADMIN) as reply:
        assert (200, "audio/wav", AUDIO) == (
            reply.status,
            reply.headers["Content-Type"],
            await reply.read(),
        )


@pytest.mark.parametrize(
    ("path", "headers", "expected_status"),
    [
        ("/recordings/{here}", VIEWER, 403),
        ("/recordings/{here}", {}, 401),
        ("/recordings/{elsewhere}", ADMIN, 404),
        ("/recordings/999999", ADMIN, 404),
        ("/recordings/2147483648", ADMIN, 404),
        ("/recordings/999999999999999999", ADMIN, 404),
        ("/recordings/..%2Fsecret.wav", ADMIN, 404),
        ("/recordings/../secret.wav", ADMIN, 404),
    ],
    ids=[
        "viewer",
        "anonymous",
        "file not here",
        "no such survey",
        "past a 32-bit id",
        "18 digits",
        "encoded path",
        "dot path",
    ],
)
async def test_recordings_are_for_admins_and_never_by_path(
    client: tuple[Client, int, int], path: str, headers: dict[str, str], expected_status: int
) -> None:
    """Viewers are refused; only a numeric survey id names a recording."""
    http, here, elsewhere = client
    url = path.format(here=here, elsewhere=elsewhere)
    async with http.get(url, headers=headers, allow_redirects=False) as reply:
        status = reply.status if reply.status != 303 else 401
        assert expected_status == status


async def test_agent_page_plays_the_comment_for_admins_only(
    client: tuple[Client, int, int],
) -> None:
    """Admin: a player for the file that is here (the older row, shown second),
    "comment recorded" for the other; viewer: "comment recorded" for both."""
    http, here, elsewhere = client
    pages = []
    for headers in (ADMIN, VIEWER):
        params = {"name": "Alice", **MARCH}
        async with http.get("/dashboard/agent", params=params, headers=headers) as reply:
            pages.append(await reply.text())
    admin, viewer = pages
    expected = (
        True,
        False,
        {"detractor-0-comment": "comment recorded", "detractor-1-comment": ""},
        {"detractor-0-comment": "comment recorded", "detractor-1-comment": "comment recorded"},
    )
    actual = (
        f'src="/recordings/{here}"' in admin,
        f'src="/recordings/{elsewhere}"' in admin or "/recordings/" in viewer,
        {k: v for k, v in metrics(admin).items() if k.endswith("-comment")},
        {k: v for k, v in metrics(viewer).items() if k.endswith("-comment")},
    )
    assert expected == actual
