"""`ivr-survey run` as a process manager drives it: SIGTERM, a second SIGTERM, SIGKILL, SIGHUP.

The real CLI runs as a child process against the simulated PBX in this
process, on SQLite and on PostgreSQL; what it stored is read back afterwards.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.core.domain import SurveyStatus
from ivr.sim import AmiAccount, CallPlan, CallResult, SimulatedPbx, Turn
from storage.database import create_engine, session_factory, upgrade
from storage.repository import SqlSurveyRepository, StoredSurvey
from tests.helpers.cli_process import CliProcess, TomlValue, render_toml, wait_for_rows
from tests.helpers.stack import free_port

PBX = "pbx-life"
SECRET = "lifecycle-secret"
PROMPT = 0.3
ANSWER_TIMEOUT = 4.0
# Keys typed well after the question has played, during WAIT FOR DIGIT.
KEY_AT = 1.0


def answers(*keys: str, at: float = KEY_AT) -> tuple[Turn, ...]:
    return tuple(Turn.keys(key, at=at) for key in keys)


@dataclass
class Rig:
    pbx: SimulatedPbx
    database_url: str
    agi_port: int
    folder: Path
    config_path: Path

    def write_config(
        self, survey: Mapping[str, TomlValue] | None = None, **sections: Mapping[str, TomlValue]
    ) -> None:
        document: dict[str, Mapping[str, TomlValue]] = {
            "ami": {
                "host": "127.0.0.1",
                "port": self.pbx.ami_port,
                "username": "ivr",
                "secret": SECRET,
                "name": PBX,
                "reconnect_min": 0.1,
            },
            "agi": {"host": "127.0.0.1", "port": self.agi_port, "drain_seconds": 30.0},
            "database": {"url": self.database_url},
            "survey": {"answer_timeout": ANSWER_TIMEOUT, "ten_timeout": 0.5, **(survey or {})},
            "web": {"port": 0},
        }
        for name, values in sections.items():
            document[name] = {**document.get(name, {}), **values}
        self.config_path.write_text(render_toml(document), encoding="utf-8")

    async def start(self) -> CliProcess:
        process = await CliProcess.start("--config", str(self.config_path), "run", cwd=self.folder)
        await process.wait_for_line("running: AMI")
        await self.pbx.wait_for_logins(1, timeout=10.0)
        return process

    async def survey(self, linkedid: str) -> StoredSurvey | None:
        engine = create_engine(self.database_url)
        try:
            return await SqlSurveyRepository(session_factory(engine)).get_survey(PBX, linkedid)
        finally:
            await engine.dispose()


@pytest.fixture
async def rig(database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    await upgrade(database_url)
    agi_port = free_port()
    pbx = SimulatedPbx(
        name=PBX,
        agi_port=agi_port,
        accounts=(AmiAccount("ivr", SECRET),),
        time_scale=0.002,
        prompt_seconds=PROMPT,
        login_failure_delay=0.05,
    )
    await pbx.start()
    try:
        yield Rig(pbx, database_url, agi_port, tmp_path, tmp_path / "ivr-survey.toml")
    finally:
        await pbx.stop()


def scores(survey: StoredSurvey | None) -> list[tuple[str, int | None]]:
    assert survey is not None
    return [(answer.question, answer.value) for answer in survey.answers]


def sent_commands(result: CallResult, prefix: str) -> list[str]:
    return [
        line.text
        for line in result.agi_lines
        if line.sent_by_service and line.text.startswith(prefix)
    ]


async def seconds_until_refused(port: int, timeout: float = 5.0) -> float:
    """How long until a FastAGI connect to `port` is refused, as Asterisk's would be."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return time.monotonic() - started
        writer.close()
        await asyncio.sleep(0.01)
    raise AssertionError(f"port {port} still accepted connections after {timeout}s")


async def test_sigterm_refuses_new_calls_at_once_and_lets_surveys_in_progress_finish(
    rig: Rig,
) -> None:
    """Two surveys in progress at SIGTERM finish and are stored; a new connect is refused at once.

    A call reaching AGI() after the signal gets AGISTATUS=FAILURE (the dialplan's
    fall-through), the process exits 0 and says how the drain went.
    """
    rig.write_config()
    process = await rig.start()
    try:
        calls = [rig.pbx.start_call(CallPlan(survey=answers("9", "8"))) for _ in range(2)]
        await wait_for_rows(rig.database_url, "surveys", 2)
        process.send(signal.SIGTERM)
        refused_after = await seconds_until_refused(rig.agi_port)
        late_call = await rig.pbx.place_call(CallPlan(survey=answers("5", "5")))
        results = await asyncio.gather(*calls)
        exit_code = await process.exit_code()
    finally:
        await process.kill()
    stored = [await rig.survey(result.linkedid) for result in results]
    assert refused_after < 1.0
    assert "FAILURE" == late_call.agi_status
    assert [[("agent", 9), ("company", 8)]] * 2 == [scores(survey) for survey in stored]
    assert [SurveyStatus.COMPLETED] * 2 == [survey.status for survey in stored if survey]
    assert 0 == exit_code, process.log
    assert "stopped: 2 surveys in progress finished, 0 cut off at the deadline" in process.log
    assert "Traceback" not in process.log


async def test_surveys_still_running_at_the_drain_deadline_are_cut_off_with_answers_kept(
    rig: Rig,
) -> None:
    """`drain_seconds` bounds the wait; the answer already given is stored, exit code 0."""
    rig.write_config(agi={"drain_seconds": 0.5})
    process = await rig.start()
    try:
        call = rig.pbx.start_call(CallPlan(survey=answers("7")))
        await wait_for_rows(rig.database_url, "answers", 1)
        process.send(signal.SIGTERM)
        exit_code = await process.exit_code(timeout=15.0)
        result = await call
    finally:
        await process.kill()
    assert 0 == exit_code, process.log
    assert "stopped: 0 surveys in progress finished, 1 cut off at the deadline" in process.log
    assert [("agent", 7)] == scores(await rig.survey(result.linkedid))


async def test_a_second_sigterm_cuts_the_drain_short(rig: Rig) -> None:
    """With 30 s of drain left, a second SIGTERM ends the process within seconds."""
    rig.write_config()
    process = await rig.start()
    try:
        call = rig.pbx.start_call(CallPlan(survey=answers("6")))
        await wait_for_rows(rig.database_url, "answers", 1)
        process.send(signal.SIGTERM)
        await process.wait_for_line("stopping: no new surveys")
        started = time.monotonic()
        process.send(signal.SIGTERM)
        exit_code = await process.exit_code(timeout=15.0)
        took = time.monotonic() - started
        result = await call
    finally:
        await process.kill()
    assert (0, True) == (exit_code, took < 5.0), process.log
    assert "1 cut off at the deadline" in process.log
    assert [("agent", 6)] == scores(await rig.survey(result.linkedid))


async def test_sigkill_mid_survey_loses_no_stored_answer(rig: Rig) -> None:
    """A hard kill after the first answer: that answer and the survey row are
    intact, and the next start marks the survey interrupted instead of leaving
    it in progress for ever."""
    rig.write_config()
    process = await rig.start()
    try:
        call = rig.pbx.start_call(CallPlan(survey=answers("4")))
        await wait_for_rows(rig.database_url, "answers", 1)
        process.send(signal.SIGKILL)
        exit_code = await process.exit_code()
        result = await call
    finally:
        await process.kill()
    assert -signal.SIGKILL == exit_code
    survey = await rig.survey(result.linkedid)
    assert ([("agent", 4)], SurveyStatus.IN_PROGRESS) == (scores(survey), survey and survey.status)
    restarted = await CliProcess.start("--config", str(rig.config_path), "run", cwd=rig.folder)
    try:
        await restarted.wait_for_line("running: AMI")
        restarted.send(signal.SIGTERM)
        await restarted.exit_code()
    finally:
        await restarted.kill()
    survey = await rig.survey(result.linkedid)
    assert ([("agent", 4)], SurveyStatus.INTERRUPTED) == (scores(survey), survey and survey.status)
    assert "marked interrupted" in restarted.log
    assert result.linkedid in restarted.log
    if rig.database_url.startswith("sqlite"):
        engine = create_engine(rig.database_url)
        try:
            async with engine.connect() as connection:
                check = await connection.execute(sa.text("PRAGMA integrity_check"))
                assert "ok" == check.scalar_one()
        finally:
            await engine.dispose()


async def test_sighup_applies_new_prompts_and_timeouts_to_the_next_call_only(rig: Rig) -> None:
    """A call in progress keeps its prompts; the next one uses the reloaded file.

    A changed web port is reported as needing a restart, by name only.
    """
    rig.write_config()
    process = await rig.start()
    try:
        running = rig.pbx.start_call(CallPlan(survey=answers("9", "8", at=1.5)))
        await wait_for_rows(rig.database_url, "surveys", 1)
        rig.write_config(
            survey={
                "prompt_agent": "ivr-survey/agent-question-v2",
                "prompt_company": "ivr-survey/company-question-v2",
                "answer_timeout": 3.0,
            },
            web={"port": 1},
        )
        process.send(signal.SIGHUP)
        await process.wait_for_line("configuration reloaded")
        after = await rig.pbx.place_call(CallPlan(survey=answers("3", "2")))
        before = await running
        process.send(signal.SIGTERM)
        exit_code = await process.exit_code()
    finally:
        await process.kill()
    assert [
        'STREAM FILE ivr-survey/agent-question "0123456789*#"',
        'STREAM FILE ivr-survey/company-question "0123456789*#"',
    ] == sent_commands(before, "STREAM FILE ivr-survey/")[1:3]
    assert [
        'STREAM FILE ivr-survey/agent-question-v2 "0123456789*#"',
        'STREAM FILE ivr-survey/company-question-v2 "0123456789*#"',
    ] == sent_commands(after, "STREAM FILE ivr-survey/")[1:3]
    assert {"WAIT FOR DIGIT 4000"} == set(sent_commands(before, "WAIT FOR DIGIT"))
    assert {"WAIT FOR DIGIT 3000"} == set(sent_commands(after, "WAIT FOR DIGIT"))
    assert [("agent", 9), ("company", 8)] == scores(await rig.survey(before.linkedid))
    assert [("agent", 3), ("company", 2)] == scores(await rig.survey(after.linkedid))
    assert 0 == exit_code
    assert (
        "survey.prompt_agent, survey.prompt_company, survey.answer_timeout applied" in process.log
    )
    assert "changed keys that need a restart to take effect: web.port" in process.log


async def test_sighup_with_an_invalid_file_keeps_the_old_configuration(rig: Rig) -> None:
    """Each problem is logged on its own line; the next call still uses the old prompts."""
    rig.write_config()
    process = await rig.start()
    try:
        rig.config_path.write_text(
            '[survey]\nmax_attempts = 0\nprompt_agent = "no spaces allowed"\n', encoding="utf-8"
        )
        process.send(signal.SIGHUP)
        await process.wait_for_line("reload refused")
        result = await rig.pbx.place_call(CallPlan(survey=answers("10", "9")))
        process.send(signal.SIGTERM)
        exit_code = await process.exit_code()
    finally:
        await process.kill()
    problems = [line.split("ivr: ", 1)[1] for line in process.lines if "ivr:   [survey]" in line]
    assert [
        "  [survey] prompt_agent: 'no spaces allowed' is not a sound file name "
        "(letters, digits, _ . / - only, no extension needed)",
        "  [survey] max_attempts: 0 must be at least 1",
    ] == problems
    assert 'STREAM FILE ivr-survey/agent-question "0123456789*#"' in sent_commands(
        result, "STREAM FILE"
    )
    assert [("agent", 10), ("company", 9)] == scores(await rig.survey(result.linkedid))
    assert 0 == exit_code
