"""Signed-out sessions stay signed out: after a restart, on another node, and
after `ivr-survey web sessions revoke`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.adapters.web import FixedMetrics, create_app
from ivr.adapters.web.auth import Authenticator, Principal, revocation_of
from ivr.adapters.web.revocation_sync import POLL_SECONDS
from ivr.config.settings import WebConfig
from ivr.ports import Revocation, RevocationKind, RevocationStore
from storage.analytics import SqlReportReader
from storage.database import create_engine, session_factory, upgrade
from storage.revocations import SqlRevocations
from tests.helpers.cli import ivr_survey
from tests.helpers.web import PASSWORD, PASSWORD_HASH, settings
from tests.web.scenario import NOW

Client = TestClient[web.Request, web.Application]
COOKIE = "ivr_survey_session"


@asynccontextmanager
async def node(
    sessions: async_sessionmaker[AsyncSession], store: RevocationStore | None = None
) -> AsyncIterator[Client]:
    """One service's web app on the shared database, as a browser sees it."""
    app = create_app(
        settings(),
        SqlReportReader(sessions, clock=lambda: NOW),
        FixedMetrics(),
        today=NOW.date,
        refresh_rollups=False,
        revocations=store or SqlRevocations(sessions),
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def signed_in(client: Client, name: str = "manager") -> str:
    """The session cookie a browser gets for `name`."""
    async with client.post(
        "/login", data={"username": name, "password": PASSWORD}, allow_redirects=False
    ) as reply:
        assert 303 == reply.status
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value


async def dashboard_status(client: Client, cookie: str) -> int:
    """200 for a session that works, 303 (to /login) for one that does not."""
    client.session.cookie_jar.clear()
    async with client.get(
        "/dashboard", headers={"Cookie": f"{COOKIE}={cookie}"}, allow_redirects=False
    ) as reply:
        return reply.status


async def log_out(client: Client, cookie: str) -> None:
    client.session.cookie_jar.clear()
    async with client.post(
        "/logout", headers={"Cookie": f"{COOKIE}={cookie}"}, allow_redirects=False
    ) as reply:
        assert 303 == reply.status


async def eventually(status: Callable[[], Awaitable[int]], expected: int) -> int:
    """The value once it equals `expected`, or the last one after three polls."""
    deadline = asyncio.get_running_loop().time() + 3 * POLL_SECONDS
    while True:
        value = await status()
        if value == expected or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_a_logout_still_holds_after_a_restart(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The copied cookie of a signed-out session is refused by the next start too."""
    async with node(database_sessions) as first:
        cookie = await signed_in(first)
        other = await signed_in(first, "wall")
        await log_out(first, cookie)
    async with node(database_sessions) as restarted:
        statuses = (
            await dashboard_status(restarted, cookie),
            await dashboard_status(restarted, other),
        )

    assert (303, 200) == statuses


async def test_a_logout_on_one_node_holds_on_the_other(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two nodes on one database: a session ended on A is refused by B within a poll."""
    async with node(database_sessions) as first, node(database_sessions) as second:
        cookie = await signed_in(first)
        before = await dashboard_status(second, cookie)
        await log_out(first, cookie)
        after = await eventually(functools.partial(dashboard_status, second, cookie), 303)

    assert (200, 303) == (before, after)


async def test_revoking_a_user_ends_their_sessions_but_not_a_new_one(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Every cookie of the user signed before the revocation is refused; others'
    cookies and a sign-in after it work."""
    async with node(database_sessions) as running:
        cookies = [await signed_in(running), await signed_in(running)]
        other = await signed_in(running, "wall")
        await asyncio.sleep(1.1)  # issue times are whole seconds
        await SqlRevocations(database_sessions).record(revocation_of("manager", datetime.now(UTC)))
        ended = [
            await eventually(functools.partial(dashboard_status, running, cookie), 303)
            for cookie in cookies
        ]
        await asyncio.sleep(1.1)
        fresh = await signed_in(running)
        statuses = (
            ended,
            await dashboard_status(running, other),
            await dashboard_status(running, fresh),
        )

    assert ([303, 303], 200, 200) == statuses


class Unreachable:
    """A store whose database is down, until `back` is set."""

    def __init__(self, real: SqlRevocations) -> None:
        self.real = real
        self.back = False

    async def record(self, revocation: Revocation) -> None:
        if not self.back:
            raise ConnectionRefusedError("database down")
        await self.real.record(revocation)

    async def newer_than(self, last_seen: int, now: datetime) -> Sequence[tuple[int, Revocation]]:
        if not self.back:
            raise ConnectionRefusedError("database down")
        return await self.real.newer_than(last_seen, now)

    async def forget_expired(self, now: datetime) -> int:
        return await self.real.forget_expired(now) if self.back else 0


async def test_with_the_database_down_old_cookies_are_refused_and_logouts_kept(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Sign-outs that cannot be read at start: a cookie from before is refused, a
    fresh sign-in works; a logout during the outage is stored once it is back."""
    async with node(database_sessions) as before_outage:
        old = await signed_in(before_outage)
    down = Unreachable(SqlRevocations(database_sessions))
    async with node(database_sessions, down) as during:
        await asyncio.sleep(1.1)
        fresh = await signed_in(during)
        during_statuses = (
            await dashboard_status(during, old),
            await dashboard_status(during, fresh),
        )
        await log_out(during, fresh)
        down.back = True
        old_when_back = await eventually(functools.partial(dashboard_status, during, old), 200)
    async with node(database_sessions) as restarted:
        fresh_after_restart = await dashboard_status(restarted, fresh)

    assert ((303, 200), 200, 303) == (during_statuses, old_when_back, fresh_after_restart)


def test_a_cut_off_refuses_what_was_signed_until_it_and_nothing_after() -> None:
    """Issue times are whole seconds: a cookie signed in the revocation's second is refused."""
    config = WebConfig(users=f"manager:admin:{PASSWORD_HASH}", session_secret="s")
    cases = []
    for signed_at, revoked_at, expected in [
        (1000.0, 1000.5, None),
        (1000.7, 1000.5, None),
        (1000.0, 999.9, Principal("manager", "admin")),
        (1001.0, 1000.5, Principal("manager", "admin")),
    ]:
        cookie = Authenticator(config, clock=functools.partial(float, signed_at)).session_cookie(
            Principal("manager", "admin")
        )
        checker = Authenticator(config, clock=lambda: 1500.0)
        checker.apply(revocation_of("manager", datetime.fromtimestamp(revoked_at, UTC)))
        cases.append((expected, checker.from_cookie(cookie)))

    assert [(expected, expected) for expected, _ in cases] == cases


async def test_expired_session_revocations_are_forgotten(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A session's row goes once its cookie would have expired; a user's stays."""
    store = SqlRevocations(database_sessions)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    await store.record(
        Revocation(RevocationKind.SESSION, "s1", revoked_at=at, expires_at=at.replace(hour=1))
    )
    await store.record(revocation_of("manager", at))
    await store.record(revocation_of("manager", at.replace(minute=5)))
    forgotten = await store.forget_expired(at.replace(hour=2))
    kept = [revocation for _, revocation in await store.newer_than(0, at.replace(hour=2))]

    assert (1, [revocation_of("manager", at.replace(minute=5))]) == (forgotten, kept)


async def test_the_cli_signs_a_user_out_of_a_running_service(tmp_path: Path) -> None:
    """`ivr-survey web sessions revoke manager` while the service runs: the
    manager's browser is signed out within a poll, the viewer's is not; an
    unknown user is refused with the names that exist."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.db'}"
    await upgrade(url)
    environment = {
        "IVR_SURVEY_DATABASE_URL": url,
        "IVR_SURVEY_WEB_USERS": f"manager:admin:{PASSWORD_HASH},wall:viewer:{PASSWORD_HASH}",
    }
    engine = create_engine(url)
    try:
        async with node(session_factory(engine)) as running:
            manager, wall = await signed_in(running), await signed_in(running, "wall")
            await asyncio.sleep(1.1)
            revoked = await asyncio.to_thread(
                ivr_survey, "web", "sessions", "revoke", "manager", cwd=tmp_path, env=environment
            )
            unknown = await asyncio.to_thread(
                ivr_survey, "web", "sessions", "revoke", "nobody", cwd=tmp_path, env=environment
            )
            statuses = (
                await eventually(functools.partial(dashboard_status, running, manager), 303),
                await dashboard_status(running, wall),
            )
    finally:
        await engine.dispose()

    assert (0, 1, (303, 200)) == (revoked.returncode, unknown.returncode, statuses)
    assert revoked.stdout.startswith("signed 'manager' out of every session")
    assert "no [web] user 'nobody' (configured: manager, wall)" in unknown.stderr


@pytest.mark.parametrize("arguments", [(), ("manager", "--all")])
def test_the_cli_needs_one_user_or_all(tmp_path: Path, arguments: tuple[str, ...]) -> None:
    """Neither, or both, is a usage error (exit 2), not a guess."""
    result = ivr_survey("web", "sessions", "revoke", *arguments, cwd=tmp_path, env={})

    assert 2 == result.returncode
