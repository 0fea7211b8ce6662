"""The keypad survey flow, as tables of replies in and commands/answers out."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ivr.core.domain import SurveyStatus
from ivr.core.survey import (
    Command,
    Digit,
    Finish,
    HungUp,
    Outcome,
    Play,
    PlayedOut,
    PromptMissing,
    Question,
    Reply,
    SurveySpec,
    Timeout,
    WaitDigit,
    start,
    step,
)

SPEC = SurveySpec(
    questions=(Question("agent", "q-agent"), Question("company", "q-company")),
    intro="intro",
    invalid="invalid",
    no_input="no-input",
    thanks="thanks",
    answer_timeout=5.0,
    ten_timeout=1.5,
    max_attempts=3,
)

ASK_AGENT = Play("q-agent", interruptible=True)
ASK_COMPANY = Play("q-company", interruptible=True)
WAIT_ANSWER = WaitDigit(5.0)
WAIT_TEN = WaitDigit(1.5)
INTRO = Play("intro", interruptible=True)
INVALID = Play("invalid", interruptible=False)
NO_INPUT = Play("no-input", interruptible=False)
THANKS = Play("thanks", interruptible=False)


@dataclass(frozen=True)
class Run:
    commands: list[Command]
    stored: list[Outcome]


def drive(replies: list[Reply], spec: SurveySpec = SPEC) -> Run:
    """Feed replies one by one; collect every command issued and every answer stored."""
    transition = start(spec)
    commands: list[Command] = [transition.command]
    stored = list(transition.store)
    for reply in replies:
        transition = step(transition.state, reply)
        commands.append(transition.command)
        stored.extend(transition.store)
    return Run(commands, stored)


def test_full_survey_with_scores_typed_after_the_prompts() -> None:
    """Scores typed after each question played out are stored at once, then thanks."""
    run = drive([PlayedOut(), PlayedOut(), Digit("9"), PlayedOut(), Digit("3"), PlayedOut()])
    expected = Run(
        [INTRO, ASK_AGENT, WAIT_ANSWER, ASK_COMPANY, WAIT_ANSWER, THANKS,
         Finish(SurveyStatus.COMPLETED)],
        [Outcome("agent", 9, 1), Outcome("company", 3, 1)],
    )  # fmt: skip
    assert expected == run


@pytest.mark.parametrize(
    ("keys", "expected_value"),
    [
        ([Digit("1"), Digit("0")], 10),
        ([Digit("1"), Digit("#")], 1),
        ([Digit("1"), Timeout()], 1),
        ([Digit("0")], 0),
        ([Digit("2")], 2),
        ([Digit("7")], 7),
        ([Digit("9")], 9),
    ],
    ids=["1-0 is ten", "1-# is one", "1 then nothing is one", "0", "2", "7", "9"],
)
def test_keypad_scores_during_the_question(keys: list[Reply], expected_value: int) -> None:
    """Barge-in keys decide the score; only 1 waits for a second key."""
    run = drive([PlayedOut(), *keys])
    assert [Outcome("agent", expected_value, 1)] == run.stored
    assert ASK_COMPANY == run.commands[-1]


def test_one_waits_for_a_second_key_with_the_ten_timeout() -> None:
    """After 1 the flow waits ten_timeout, not the full answer timeout."""
    run = drive([PlayedOut(), Digit("1")])
    assert WAIT_TEN == run.commands[-1]
    assert [] == run.stored


@pytest.mark.parametrize(
    "replies",
    [
        [Digit("#")],
        [Digit("1"), Digit("5")],
        [Digit("1"), Digit("1")],
        [Digit("1"), Digit("*")],
    ],
    ids=["# alone", "1-5", "1-1", "1-*"],
)
def test_invalid_input_plays_invalid_and_asks_again(replies: list[Reply]) -> None:
    """Keys that are not a score give the invalid prompt, then the same question."""
    run = drive([PlayedOut(), *replies, PlayedOut()])
    assert [INVALID, ASK_AGENT] == run.commands[-2:]
    assert [] == run.stored


def test_invalid_then_valid_counts_both_attempts() -> None:
    """The stored attempts say how many times the question was asked."""
    run = drive([PlayedOut(), Digit("#"), PlayedOut(), Digit("8")])
    assert [Outcome("agent", 8, 2)] == run.stored


def test_star_repeats_the_question_without_the_invalid_prompt() -> None:
    """* is a request to hear the question again, not a mistake."""
    run = drive([PlayedOut(), Digit("*"), Digit("6")])
    assert [INTRO, ASK_AGENT, ASK_AGENT, ASK_COMPANY] == run.commands
    assert [Outcome("agent", 6, 2)] == run.stored


def test_silence_until_give_up_stores_null_and_goes_on() -> None:
    """After max_attempts without input the question is unanswered (None, not 0)."""
    silence: list[Reply] = [PlayedOut(), Timeout(), PlayedOut()]
    run = drive([PlayedOut(), *silence, *silence, PlayedOut(), Timeout()])
    assert [Outcome("agent", None, 3)] == run.stored
    assert ASK_COMPANY == run.commands[-1]
    assert [NO_INPUT, ASK_AGENT, WAIT_ANSWER, NO_INPUT, ASK_AGENT, WAIT_ANSWER] == (
        run.commands[3:9]
    )


def test_silence_on_every_question_finishes_as_no_answer() -> None:
    """A survey where nobody answered anything is no_answer, both questions stored as None."""
    spec = SurveySpec(questions=SPEC.questions, max_attempts=1, thanks="thanks")
    run = drive([PlayedOut(), Timeout(), PlayedOut(), Timeout(), PlayedOut()], spec)
    assert Finish(SurveyStatus.NO_ANSWER) == run.commands[-1]
    assert [Outcome("agent", None, 1), Outcome("company", None, 1)] == run.stored


@pytest.mark.parametrize(
    ("replies", "expected_status", "expected_stored"),
    [
        ([HungUp()], SurveyStatus.HUNG_UP, []),
        ([PlayedOut(), HungUp()], SurveyStatus.HUNG_UP, []),
        ([PlayedOut(), Digit("4"), HungUp()], SurveyStatus.PARTIAL, [Outcome("agent", 4, 1)]),
        (
            [PlayedOut(), Digit("4"), Digit("5"), HungUp()],
            SurveyStatus.COMPLETED,
            [Outcome("agent", 4, 1), Outcome("company", 5, 1)],
        ),
        ([PlayedOut(), Digit("1"), HungUp()], SurveyStatus.HUNG_UP, []),
    ],
    ids=[
        "during intro",
        "during question",
        "after first answer",
        "during thanks",
        "after 1 (ambiguous)",
    ],
)
def test_hang_up_anywhere_ends_the_survey_with_where_it_stopped(
    replies: list[Reply], expected_status: SurveyStatus, expected_stored: list[Outcome]
) -> None:
    """The status says where the caller left; stored answers are kept."""
    run = drive(replies)
    assert Finish(expected_status) == run.commands[-1]
    assert expected_stored == run.stored


def test_missing_question_prompt_skips_that_question_but_keeps_the_caller() -> None:
    """A prompt file missing on the Asterisk host must not drop the caller (fact 52)."""
    run = drive([PlayedOut(), PromptMissing(), Digit("8")])
    assert [Outcome("agent", None, 1), Outcome("company", 8, 1)] == run.stored


@pytest.mark.parametrize(
    ("replies", "expected_stored"),
    [
        ([Digit("8"), Digit("9")], [Outcome("agent", 8, 1), Outcome("company", 9, 1)]),
        ([Digit("1"), Digit("0"), Digit("9")], [Outcome("agent", 10, 1), Outcome("company", 9, 1)]),
        (
            [Digit("*"), PlayedOut(), Digit("6"), Digit("9")],
            [Outcome("agent", 6, 1), Outcome("company", 9, 1)],
        ),
    ],
    ids=["8 during the intro", "1 then 0 during the intro", "* during the intro asks"],
)
def test_a_key_during_the_intro_answers_the_first_question(
    replies: list[Reply], expected_stored: list[Outcome]
) -> None:
    """The intro is interruptible: a caller who knows the survey need not wait for it."""
    run = drive(replies)
    assert (INTRO, expected_stored) == (run.commands[0], run.stored)


def test_missing_intro_goes_straight_to_the_first_question() -> None:
    """A missing intro is not a reason to skip the survey."""
    run = drive([PromptMissing()])
    assert ASK_AGENT == run.commands[-1]


def test_survey_without_optional_prompts_finishes_after_the_last_answer() -> None:
    """Prompts set to "" are skipped entirely."""
    spec = SurveySpec(questions=SPEC.questions)
    run = drive([Digit("5"), Digit("9")], spec)
    assert [ASK_AGENT, ASK_COMPANY, Finish(SurveyStatus.COMPLETED)] == run.commands


def test_step_after_finish_is_an_error() -> None:
    """The adapter must stop driving a finished survey."""
    transition = step(start(SPEC).state, HungUp())
    with pytest.raises(ValueError, match="finished"):
        step(transition.state, PlayedOut())
