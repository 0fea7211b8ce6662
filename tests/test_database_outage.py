"""A PostgreSQL outage in the middle of 200 surveys loses no answer.

The service reaches PostgreSQL through a TCP proxy that the test cuts while
surveys are running (connections reset, new ones refused) and restores later.
Surveys begun before, during and after the outage all run to the end on the
simulated PBX; what could not be written went to the spool and was written
back once the database answered again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.config.settings import DatabaseConfig
from ivr.core.domain import SurveyStatus
from ivr.runtime.service import Service
from ivr.sim import CallPlan, Turn
from storage.database import create_engine, normalize_url, upgrade
from tests.helpers.stack import PBX, service_config, started_pbx, survey_reader
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.postgres

CALLS = 200
CALL_SPACING = 0.02


@pytest.fixture
async def proxied_postgres(postgres_database_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """An empty, migrated PostgreSQL database and a URL to it through a cuttable proxy."""
    direct = normalize_url(postgres_database_url)
    engine = create_engine(direct)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            await autocommit.execute(sa.text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
    await upgrade(direct)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    await proxy.start()
    try:
        proxied = direct.set(host="127.0.0.1", port=proxy.port)
        yield proxied.render_as_string(hide_password=False), proxy
    finally:
        await proxy.stop()


def plan(number: int) -> CallPlan:
    """Keys pressed while each question plays (barge-in): robust on a busy machine."""
    agent, company = 2 + number % 8, 2 + (number * 3) % 8
    return CallPlan(
        survey=(Turn.keys(str(agent), at=0.01), Turn.keys(str(company), at=0.01)),
    )


async def test_every_answer_given_during_an_outage_is_stored(
    proxied_postgres: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    """200 surveys; the database vanishes after the first quarter and comes back
    after the third: every answer given is stored once, every survey completed."""
    url, proxy = proxied_postgres
    pbx, agi_port = await started_pbx()
    config = service_config(pbx.ami_port, url, agi_port)
    config = dataclasses.replace(
        config, database=DatabaseConfig(url=url, spool_dir=str(tmp_path / "spool"))
    )
    service = Service(config)
    await service.start()
    try:
        assert service.ami is not None
        assert await service.ami.wait_logged_in(5.0)
        assert service.writer is not None
        writer = service.writer
        deepest = 0
        calls = []
        for number in range(CALLS):
            if number == CALLS // 4:
                await proxy.cut()
            if number == 3 * CALLS // 4:
                await proxy.restore()
            deepest = max(deepest, writer.spool_depth)
            calls.append(pbx.start_call(plan(number)))
            await asyncio.sleep(CALL_SPACING)
        results = await asyncio.gather(*calls)
        async with survey_reader(url) as repository:

            async def written_back() -> bool:
                return not writer.down and writer.spool_depth == 0

            async def every_call_ended() -> bool:
                await writer.flush()
                stored = [await repository.get_call(PBX, result.linkedid) for result in results]
                return all(call is not None and call.ended_at is not None for call in stored)

            assert await wait_for(written_back, 60.0)
            await service.background.drain(10.0)
            assert await wait_for(every_call_ended, 30.0)

            given, stored, statuses = [], [], []
            for number, result in enumerate(results):
                expected = plan(number)
                given.append(tuple(int(turn.presses[0].keys) for turn in expected.survey))
                survey = await repository.get_survey(PBX, result.linkedid)
                stored.append(tuple(a.value for a in survey.answers) if survey else None)
                statuses.append(survey.status if survey else None)
            assert deepest > 0, "the outage never reached the spool"
            assert given == stored
            assert [SurveyStatus.COMPLETED] * CALLS == statuses
            assert 0 == writer.failed
    finally:
        await service.stop(grace=2.0)
        await pbx.stop()
