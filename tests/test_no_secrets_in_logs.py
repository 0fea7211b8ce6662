"""No secret reaches a log line, stdout or stderr, even at --debug and on every failure path.

The real CLI runs (`run` and `check`) with every secret set: the AMI secret,
a database password in the URL, API tokens, the session secret, users'
password hashes, the alerts secret and a webhook URL carrying a token. It goes
through an AMI login refusal, a failed dashboard login and a wrong token, a
detractor webhook that redirects forever and then one that is unreachable, and
an unreachable database; none of the secret strings may appear in what it wrote.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ivr.adapters.web.auth import hash_password
from ivr.sim import AmiAccount, CallPlan, SimulatedPbx, Turn
from storage.database import normalize_url, upgrade
from tests.helpers.cli_process import CliProcess, TomlValue, render_toml

AMI_SECRET = "ami-secret-Zq81xv"
DB_PASSWORD = "db-password-Kp27wm"
ADMIN_TOKEN = "admin-token-Lr55tb0123456789"
VIEWER_TOKEN = "viewer-token-Hs93ye0123456789"
SESSION_SECRET = "session-secret-Wd64nc"
USER_PASSWORD = "user-password-Tf18qa"
USER_HASH = hash_password(USER_PASSWORD, iterations=1000, salt=b"salt-Vg42pj-0123")
ALERTS_SECRET = "alerts-secret-Jm37ku"
WEBHOOK_TOKEN = "webhook-token-Bx76re"
SECRETS = (
    AMI_SECRET,
    DB_PASSWORD,
    ADMIN_TOKEN,
    VIEWER_TOKEN,
    SESSION_SECRET,
    USER_PASSWORD,
    USER_HASH,
    USER_HASH.rsplit("$", 1)[1],
    ALERTS_SECRET,
    WEBHOOK_TOKEN,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def redirecting_webhook() -> AsyncIterator[str]:
    """A webhook that redirects to itself forever (aiohttp then raises with the URL)."""

    async def loop_back(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(str(request.rel_url))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", loop_back)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hooks/{WEBHOOK_TOKEN}?token={WEBHOOK_TOKEN}"
    finally:
        await runner.cleanup()


def secrets_found(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def config_text(
    *, ami_port: int, agi_port: int, web_port: int, database_url: str, webhook_url: str
) -> str:
    sections: dict[str, dict[str, TomlValue]] = {
        "ami": {
            "port": ami_port,
            "username": "ivr",
            "secret": AMI_SECRET,
            "name": "pbx-secrets",
            "auth_retry_min": 0.2,
            "reconnect_min": 0.1,
            "reconnect_max": 0.5,
        },
        "agi": {"port": agi_port, "drain_seconds": 5.0},
        "database": {"url": database_url},
        "survey": {"answer_timeout": 2.0},
        "web": {
            "port": web_port,
            "tokens": f"admin:{ADMIN_TOKEN} viewer:{VIEWER_TOKEN}",
            "users": f"manager:admin:{USER_HASH}",
            "session_secret": SESSION_SECRET,
        },
        "alerts": {
            "webhook_url": webhook_url,
            "secret": ALERTS_SECRET,
            "timeout": 1.0,
            "max_attempts": 2,
            "backoff_initial": 0.05,
            "backoff_max": 0.1,
        },
        "log": {"level": "DEBUG"},
    }
    return render_toml(sections)


async def web_failures(port: int) -> list[int]:
    """A failed dashboard login and a wrong bearer token: both refused."""
    statuses = []
    async with aiohttp.ClientSession() as http:
        form = {"username": "manager", "password": "wrong-" + USER_PASSWORD[::-1]}
        async with http.post(
            f"http://127.0.0.1:{port}/login", data=form, allow_redirects=False
        ) as reply:
            statuses.append(reply.status)
        bad = {"Authorization": f"Bearer {ADMIN_TOKEN}x"}
        async with http.get(f"http://127.0.0.1:{port}/api/nps", headers=bad) as reply:
            statuses.append(reply.status)
    return statuses


async def test_no_secret_appears_in_any_output_at_debug_level(
    postgres_database_url: str, tmp_path: Path, redirecting_webhook: str
) -> None:
    """`run` and `check` at --debug through every failure path print no secret."""
    await upgrade(postgres_database_url)
    with_password = normalize_url(postgres_database_url).set(password=DB_PASSWORD)
    database_url = with_password.render_as_string(hide_password=False)
    agi_port, web_port = free_port(), free_port()
    pbx = SimulatedPbx(
        name="pbx-secrets",
        agi_port=agi_port,
        accounts=(AmiAccount("ivr", "not-the-configured-secret"),),
        time_scale=0.002,
        prompt_seconds=0.05,
        login_failure_delay=0.05,
    )
    await pbx.start()
    config = tmp_path / "ivr-survey.toml"
    outputs: list[str] = []
    try:
        config.write_text(
            config_text(
                ami_port=pbx.ami_port,
                agi_port=agi_port,
                web_port=web_port,
                database_url=database_url,
                webhook_url=redirecting_webhook,
            ),
            encoding="utf-8",
        )
        service = await CliProcess.start("--debug", "--config", str(config), "run", cwd=tmp_path)
        try:
            await service.wait_for_line("running: AMI")
            await service.wait_for_line("login refused")
            statuses = await web_failures(web_port)
            detractor = (Turn.keys("2", at=0.25), Turn.keys("3", at=0.25))
            await pbx.place_call(CallPlan(survey=detractor))
            await service.wait_for_line("not delivered after 2 attempts")
            service.send(signal.SIGTERM)
            assert 0 == await service.exit_code()
            outputs += [service.log, await service.stdout()]
        finally:
            await service.kill()
        unreachable = with_password.set(port=free_port()).render_as_string(hide_password=False)
        config.write_text(
            config_text(
                ami_port=pbx.ami_port,
                agi_port=free_port(),
                web_port=free_port(),
                database_url=unreachable,
                webhook_url=f"http://127.0.0.1:{free_port()}/hooks/{WEBHOOK_TOKEN}",
            ),
            encoding="utf-8",
        )
        for command in (("check", "--ami-watch", "0.5"), ("run",)):
            process = await CliProcess.start(
                "--debug", "--config", str(config), *command, cwd=tmp_path
            )
            try:
                code = await process.exit_code()
                outputs += [process.log, await process.stdout()]
            finally:
                await process.kill()
            assert 1 == code, process.log
    finally:
        await pbx.stop()
    everything = "\n".join(outputs)
    assert [401, 401] == statuses
    assert "login refused" in everything
    assert "not delivered after 2 attempts" in everything
    assert "***" in everything  # the database URL was shown, masked
    assert [] == [line for line in everything.splitlines() if secrets_found(line)]
