"""Question types, recorded comments and languages through the real service and the simulated PBX.

Same stack as tests/test_service_e2e.py (AMI and FastAGI over TCP, SQLite and
PostgreSQL), with per-queue survey choices in the configuration.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import pytest

from ivr.config.queues import QueueSurvey
from ivr.config.settings import Config
from ivr.core.domain import SurveyStatus
from ivr.runtime.service import Service
from ivr.sim import CallPlan, SimulatedPbx, Turn
from ivr.sim.call import CallResult
from storage.database import upgrade
from storage.repository import StoredSurvey
from tests.helpers.agi_peer import AgiPeer
from tests.helpers.stack import (
    PBX,
    after_prompt,
    service_config,
    started_pbx,
    survey_reader,
)

RECORDINGS = "/var/spool/asterisk/ivr-survey"


@dataclasses.dataclass
class Stack:
    pbx: SimulatedPbx
    service: Service

    async def call(self, plan: CallPlan) -> tuple[CallResult, StoredSurvey]:
        """Place the call; the survey once it has finished and its writes have landed."""
        result = await self.pbx.place_call(plan)
        return result, (await self.finished(result.linkedid))[1]

    async def finished(self, linkedid: str) -> tuple[str, StoredSurvey]:
        """The survey of the call once it is no longer in progress."""
        deadline = asyncio.get_running_loop().time() + 5.0
        async with survey_reader(self.service.config.database.url) as repository:
            while True:
                survey = await repository.get_survey(PBX, linkedid)
                if survey is not None and survey.status is not SurveyStatus.IN_PROGRESS:
                    return linkedid, survey
                assert asyncio.get_running_loop().time() < deadline, (
                    f"survey not finished: {survey}"
                )
                await asyncio.sleep(0.05)


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(database_url: str) -> AsyncIterator[StackFactory]:
    await upgrade(database_url)
    started: list[Stack] = []

    async def make(
        *, queues: Mapping[str, QueueSurvey] | None = None, **survey_options: object
    ) -> Stack:
        pbx, agi_port = await started_pbx(login_failure_delay=0.05)
        base = service_config(pbx.ami_port, database_url, agi_port)
        config: Config = dataclasses.replace(
            base,
            survey=dataclasses.replace(
                base.survey,
                **survey_options,  # type: ignore[arg-type]  # SurveyConfig fields, by name
            ),
            queues=dict(queues or {}),
        )
        stack = Stack(pbx, Service(config))
        started.append(stack)
        await stack.service.start()
        assert stack.service.ami is not None
        assert await stack.service.ami.wait_logged_in(5.0)
        return stack

    yield make
    for stack in started:
        await stack.service.stop(grace=1.0)
        await stack.pbx.stop()


def answers(survey: StoredSurvey) -> list[tuple[str, int | None, int]]:
    return [(answer.question, answer.value, answer.attempts) for answer in survey.answers]


def commands(result: CallResult, prefix: str) -> list[str]:
    return [line.text for line in result.agi_lines if line.sent_by_service and prefix in line.text]


async def test_queue_asks_its_own_questions_in_its_order(make_stack: StackFactory) -> None:
    """ces, csat, fcr for the queue; a 7 on the 1-5 CSAT is invalid and asked again."""
    stack = await make_stack(queues={"support": QueueSurvey(questions="ces, csat, fcr")})
    turns = (after_prompt("7"), after_prompt("7"), after_prompt("4"), after_prompt("2"))
    _, survey = await stack.call(CallPlan(queue="support", survey=turns))
    expected = ([("ces", 7, 1), ("csat", 4, 2), ("fcr", 0, 1)], SurveyStatus.COMPLETED)
    assert expected == (answers(survey), survey.status)


async def test_other_queues_keep_the_two_nps_questions(make_stack: StackFactory) -> None:
    """A queue without a table gets the [survey] default: agent, then company."""
    stack = await make_stack(queues={"sales": QueueSurvey(questions="csat")})
    turns = (after_prompt("9"), after_prompt("10"))
    _, survey = await stack.call(CallPlan(queue="support", survey=turns))
    assert [("agent", 9, 1), ("company", 10, 1)] == answers(survey)


@pytest.mark.parametrize(
    ("recording", "expected_comment", "expected_status"),
    [
        (Turn.keys("#", at=0.6), ("dtmf", 0.35), SurveyStatus.COMPLETED),
        (Turn.speaks(0.4), ("timeout", 1.35), SurveyStatus.COMPLETED),
        (Turn.hangup(at=0.65), ("hangup", 0.6), SurveyStatus.COMPLETED),
    ],
    ids=["# ends it", "silence ends it", "hang-up during the recording"],
)
async def test_detractor_records_a_comment(
    make_stack: StackFactory,
    recording: Turn,
    expected_comment: tuple[str, float],
    expected_status: SurveyStatus,
) -> None:
    """After a 3, the comment prompt and RECORD FILE; the row keeps file, format and duration.

    The beep plays 0.05 s; `#` rewinds 0.2 s; silence (s=1) keeps one second of it.
    """
    stack = await make_stack(
        queues={"support": QueueSurvey(questions="agent", comment="detractors")},
        comment_max_seconds=5.0,
        comment_silence_seconds=1.0,
    )
    result, survey = await stack.call(
        CallPlan(queue="support", survey=(after_prompt("3"), recording))
    )
    stem = f"{PBX}-{result.linkedid}"
    expected_command = [f'RECORD FILE {RECORDINGS}/{stem} wav "#" 5000 0 BEEP s=1']
    assert expected_command == commands(result, "RECORD FILE")
    ended_by, seconds = expected_comment
    comment = survey.comment
    assert comment is not None
    assert (stem, "wav", ended_by) == (comment.file, comment.format, comment.ended_by)
    assert seconds == pytest.approx(comment.duration_seconds, abs=0.05)
    assert ([("agent", 3, 1)], expected_status) == (answers(survey), survey.status)


async def test_promoter_is_not_asked_for_a_comment(make_stack: StackFactory) -> None:
    """comment = detractors: a 9 goes straight to thanks, no recording, no row."""
    stack = await make_stack(
        queues={"support": QueueSurvey(questions="agent", comment="detractors")}
    )
    result, survey = await stack.call(CallPlan(queue="support", survey=(after_prompt("9"),)))
    assert ([], None) == (commands(result, "RECORD FILE"), survey.comment)


async def test_language_menu_chooses_spanish(make_stack: StackFactory) -> None:
    """The menu plays each language's entry; 2 picks Spanish, set on the channel and stored."""
    stack = await make_stack(
        languages="en,es", queues={"support": QueueSurvey(language_mode="choose")}
    )
    turns = (Turn.keys("2", at=0.01), after_prompt("8"), after_prompt("9"))
    result, survey = await stack.call(CallPlan(queue="support", language="en", survey=turns))
    expected = (
        ['STREAM FILE en/ivr-survey/language-menu-1 "0123456789*#"'],
        ["SET VARIABLE CHANNEL(language) es"],
        "es",
        [("agent", 8, 1), ("company", 9, 1)],
    )
    actual = (
        commands(result, "language-menu"),
        commands(result, "SET VARIABLE CHANNEL(language)"),
        survey.language,
        answers(survey),
    )
    assert expected == actual


async def test_queue_language_is_set_on_the_channel(make_stack: StackFactory) -> None:
    """language_mode = queue: the queue's language replaces the channel's."""
    stack = await make_stack(
        languages="en,es", queues={"support": QueueSurvey(language="es", language_mode="queue")}
    )
    turns = (after_prompt("8"), after_prompt("9"))
    result, survey = await stack.call(CallPlan(queue="support", language="en", survey=turns))
    expected = (["SET VARIABLE CHANNEL(language) es"], "es")
    assert expected == (commands(result, "CHANNEL(language)"), survey.language)


async def test_channel_language_falls_back_to_the_default_for_a_missing_prompt(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """Spanish caller, sounds folder local: the prompt missing in es is played from en."""
    prompts = ("intro", "agent-question", "company-question", "invalid", "no-input", "thanks")
    for language in ("en", "es"):
        for name in prompts:
            if (language, name) != ("es", "thanks"):
                path = tmp_path / language / "ivr-survey" / f"{name}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
    stack = await make_stack(languages="en,es", sounds_dir=str(tmp_path))
    turns = (after_prompt("8"), after_prompt("9"))
    result, survey = await stack.call(CallPlan(queue="support", language="es", survey=turns))
    expected: tuple[list[str], list[str], str] = (
        [
            'STREAM FILE ivr-survey/intro "0123456789*#"',
            'STREAM FILE ivr-survey/agent-question "0123456789*#"',
            'STREAM FILE ivr-survey/company-question "0123456789*#"',
            'STREAM FILE en/ivr-survey/thanks ""',
        ],
        [],
        "es",
    )
    actual = (
        commands(result, "STREAM FILE"),
        commands(result, "CHANNEL(language)"),
        survey.language,
    )
    assert expected == actual


async def test_hang_up_during_the_language_menu_is_one_hung_up_survey(
    make_stack: StackFactory,
) -> None:
    """The caller left before choosing: the survey is stored hung up, in the queue's language."""
    stack = await make_stack(
        languages="en,es", queues={"support": QueueSurvey(language="es", language_mode="choose")}
    )
    _, survey = await stack.call(CallPlan(queue="support", survey=(Turn.hangup(at=0.02),)))
    assert (SurveyStatus.HUNG_UP, "es", []) == (survey.status, survey.language, answers(survey))


async def test_recording_asterisk_cannot_write_is_logged_and_the_caller_thanked(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """`(writefile)`: an error naming the Linkedid and the folder, no comment row, thanks.

    The call is unknown to AMI tracking (three GET VARIABLEs find no queue): the
    [survey] defaults apply, here with a comment from everyone.
    """
    stack = await make_stack(comment="all")
    linkedid = "1795399999.7"
    peer = await AgiPeer.connect(
        stack.service.agi_port, "fastagi-session-complete.txt", args=(linkedid,)
    )
    commands = []
    while True:
        command = await peer.command()
        commands.append(" ".join(command.split()[:2]))
        if command.startswith("RECORD FILE"):
            await peer.send("200 result=-1 (writefile)")
        elif "question" in command:
            await peer.send("200 result=55 endpos=100")  # "7" during the question
        elif command.startswith("STREAM FILE"):
            await peer.send("200 result=0 endpos=8000")
        else:
            await peer.send("200 result=0")
        if "thanks" in command:
            break
    assert await peer.closed_by_server()
    peer.close()
    _, survey = await stack.finished(linkedid)
    expected = (
        ["GET VARIABLE"] * 3
        + ["ANSWER", "STREAM FILE", "STREAM FILE", "STREAM FILE", "STREAM FILE", "RECORD FILE",
         "STREAM FILE"],
        [("agent", 7, 1), ("company", 7, 1)],
        None,
        True,
    )  # fmt: skip
    actual = (
        commands,
        answers(survey),
        survey.comment,
        any(
            f"Linkedid={linkedid}: Asterisk could not record the comment in {RECORDINGS}" in message
            for message in caplog.messages
        ),
    )
    assert expected == actual
