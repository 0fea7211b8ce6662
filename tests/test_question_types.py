"""Every question type through the pure survey machine, as tables of keys -> stored value."""

from __future__ import annotations

import pytest

from ivr.core.domain import SurveyStatus
from ivr.core.questions import parse_names, question
from ivr.core.survey import (
    CommentSpec,
    CommentWhen,
    Digit,
    Finish,
    HungUp,
    Outcome,
    Play,
    PlayedOut,
    Record,
    Recorded,
    RecordEnd,
    RecordFailed,
    Reply,
    SurveySpec,
    Timeout,
    Transition,
    WaitDigit,
    start,
    step,
)

KNOWN = "agent, company, csat, fcr, ces"
INVALID = Play("invalid", interruptible=False)
NO_INPUT = Play("no-input", interruptible=False)
THANKS = Play("thanks", interruptible=False)
COMMENT = CommentSpec(CommentWhen.DETRACTORS, "comment", max_seconds=60, silence_seconds=3)


def spec_of(*names: str, comment: CommentSpec | None = None) -> SurveySpec:
    return SurveySpec(
        questions=tuple(question(name, f"q-{name}") for name in names),
        invalid="invalid",
        no_input="no-input",
        thanks="thanks",
        answer_timeout=5.0,
        ten_timeout=1.5,
        max_attempts=2,
        comment=comment,
    )


def run(spec: SurveySpec, replies: list[Reply]) -> tuple[list[Transition], list[Outcome]]:
    transitions = [start(spec)]
    for reply in replies:
        transitions.append(step(transitions[-1].state, reply))
    stored = [outcome for transition in transitions for outcome in transition.store]
    return transitions, stored


@pytest.mark.parametrize(
    ("name", "keys", "expected"),
    [
        ("csat", "1", 1),
        ("csat", "3", 3),
        ("csat", "5", 5),
        ("ces", "1", 1),
        ("ces", "7", 7),
        ("fcr", "1", 1),
        ("fcr", "2", 0),
        ("agent", "10", 10),
        ("agent", "0", 0),
        ("company", "6", 6),
    ],
)
def test_a_key_in_the_scale_is_stored_at_once(name: str, keys: str, expected: int) -> None:
    """Short scales decide on one key (1 does not wait for 0); fcr stores yes=1, no=0."""
    _, stored = run(spec_of(name), [Digit(key) for key in keys])
    assert [Outcome(name, expected, 1)] == stored


@pytest.mark.parametrize(
    ("name", "key"),
    [("csat", "0"), ("csat", "6"), ("csat", "9"), ("ces", "8"), ("ces", "0"), ("fcr", "3"),
     ("fcr", "0"), ("csat", "#")],
)  # fmt: skip
def test_a_key_outside_the_scale_plays_invalid_and_asks_again(name: str, key: str) -> None:
    """Out-of-range keys are invalid: nothing stored, the invalid prompt, the question again."""
    transitions, stored = run(spec_of(name), [Digit(key), PlayedOut()])
    expected = [INVALID, Play(f"q-{name}", interruptible=True)]
    assert expected == [t.command for t in transitions[1:]]
    assert [] == stored


@pytest.mark.parametrize("name", ["csat", "fcr", "ces"])
def test_one_on_a_short_scale_never_waits_for_a_second_key(name: str) -> None:
    """Only a 0-10 scale waits after 1 for a possible 0."""
    transitions, _ = run(spec_of(name, "agent"), [Digit("1"), Digit("1")])
    assert [Play("q-agent", interruptible=True), WaitDigit(1.5)] == [
        t.command for t in transitions[1:]
    ]


@pytest.mark.parametrize("name", ["csat", "fcr", "ces"])
def test_star_repeats_then_a_valid_key_counts_two_attempts(name: str) -> None:
    """`*` asks again without the invalid prompt; the attempt is counted."""
    transitions, stored = run(spec_of(name), [Digit("*"), Digit("1")])
    assert Play(f"q-{name}", interruptible=True) == transitions[1].command
    assert [Outcome(name, 1, 2)] == stored


@pytest.mark.parametrize("name", ["csat", "fcr", "ces"])
def test_silence_until_give_up_stores_none(name: str) -> None:
    """No input up to max_attempts stores None (never 0) and the survey ends no_answer."""
    replies: list[Reply] = [PlayedOut(), Timeout(), PlayedOut(), PlayedOut(), Timeout()]
    transitions, stored = run(spec_of(name), replies)
    expected_commands = [WaitDigit(5.0), NO_INPUT, Play(f"q-{name}", interruptible=True),
                         WaitDigit(5.0), THANKS]  # fmt: skip
    assert expected_commands == [t.command for t in transitions[1:]]
    assert [Outcome(name, None, 2)] == stored


@pytest.mark.parametrize(
    ("replies", "expected_status", "expected_stored"),
    [
        ([HungUp()], SurveyStatus.HUNG_UP, []),
        ([Digit("4"), HungUp()], SurveyStatus.PARTIAL, [Outcome("csat", 4, 1)]),
        ([Digit("4"), Digit("2"), HungUp()], SurveyStatus.PARTIAL,
         [Outcome("csat", 4, 1), Outcome("fcr", 0, 1)]),
        ([Digit("4"), Digit("2"), Digit("7"), HungUp()], SurveyStatus.COMPLETED,
         [Outcome("csat", 4, 1), Outcome("fcr", 0, 1), Outcome("ces", 7, 1)]),
    ],
    ids=["first question", "after csat", "after fcr", "during thanks"],
)  # fmt: skip
def test_hang_up_keeps_what_was_answered(
    replies: list[Reply], expected_status: SurveyStatus, expected_stored: list[Outcome]
) -> None:
    """A custom order csat, fcr, ces; a hang-up ends it with the usual statuses."""
    transitions, stored = run(spec_of("csat", "fcr", "ces"), replies)
    assert Finish(expected_status) == transitions[-1].command
    assert expected_stored == stored


def test_a_question_may_have_its_own_max_attempts() -> None:
    """A question's own max_attempts overrides the spec's."""
    spec = SurveySpec(questions=(question("csat", "q", max_attempts=1),), max_attempts=3)
    transitions, stored = run(spec, [PlayedOut(), Timeout()])
    assert [Outcome("csat", None, 1)] == stored
    assert Finish(SurveyStatus.NO_ANSWER) == transitions[-1].command


@pytest.mark.parametrize(
    ("when", "keys", "expected_comment"),
    [
        (CommentWhen.DETRACTORS, "6", True),
        (CommentWhen.DETRACTORS, "0", True),
        (CommentWhen.DETRACTORS, "7", False),
        (CommentWhen.ALL, "9", True),
        (CommentWhen.OFF, "0", False),
    ],
)
def test_comment_is_offered_by_mode(when: CommentWhen, keys: str, expected_comment: bool) -> None:
    """detractors: any NPS answer 0-6; all: everyone; off: nobody."""
    comment = CommentSpec(when, "comment", max_seconds=60, silence_seconds=3)
    transitions, _ = run(spec_of("agent", comment=comment), [Digit(keys)])
    expected = Play("comment", interruptible=False) if expected_comment else THANKS
    assert expected == transitions[-1].command


def test_low_csat_alone_does_not_make_a_detractor() -> None:
    """Only NPS questions decide who is a detractor."""
    transitions, _ = run(spec_of("csat", comment=COMMENT), [Digit("1")])
    assert THANKS == transitions[-1].command


@pytest.mark.parametrize(
    ("ended_by", "expected_finish"),
    [
        (RecordEnd.DTMF, None),
        (RecordEnd.TIMEOUT, None),
        (RecordEnd.HANGUP, Finish(SurveyStatus.COMPLETED)),
    ],
)
def test_recording_is_handed_over_and_the_survey_goes_on(
    ended_by: RecordEnd, expected_finish: Finish | None
) -> None:
    """The comment prompt, then Record; the recording is handed over even after a hang-up."""
    recorded = Recorded(ended_by, 2.5)
    transitions, _ = run(spec_of("agent", comment=COMMENT), [Digit("3"), PlayedOut(), recorded])
    assert Record(60, 3) == transitions[2].command
    assert recorded == transitions[3].comment
    assert (expected_finish or THANKS) == transitions[3].command


def test_failed_recording_thanks_the_caller_and_stores_no_comment() -> None:
    """A recording Asterisk could not write is no comment, and no reason to drop the caller."""
    replies: list[Reply] = [Digit("3"), PlayedOut(), RecordFailed()]
    transitions, _ = run(spec_of("agent", comment=COMMENT), replies)
    assert (THANKS, None) == (transitions[-1].command, transitions[-1].comment)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agent,company", (("agent", "company"), [])),
        ("ces fcr, csat", (("ces", "fcr", "csat"), [])),
        ("csat,nps", (("csat",), [f"'nps' is not a question (known: {KNOWN})"])),
        ("csat,csat", (("csat",), ["'csat' is asked twice"])),
        ("", ((), ["at least one question is needed"])),
    ],
)  # fmt: skip
def test_question_lists_parse_in_order_with_one_problem_per_bad_name(
    text: str, expected: tuple[tuple[str, ...], list[str]]
) -> None:
    """The order is the caller's order; unknown names are problems."""
    assert expected == parse_names(text)


def test_a_question_may_have_its_own_invalid_prompt() -> None:
    """Short scales get an invalid prompt that does not speak of 0-10."""
    spec = SurveySpec(questions=(question("csat", "q", invalid="invalid-key"),), invalid="inv")
    transitions, _ = run(spec, [Digit("9")])
    assert Play("invalid-key", interruptible=False) == transitions[-1].command


def test_comment_without_a_prompt_records_straight_away() -> None:
    """An empty comment prompt is skipped like every other empty prompt."""
    silent = CommentSpec(CommentWhen.ALL, "", max_seconds=30, silence_seconds=2)
    transitions, _ = run(spec_of("csat", comment=silent), [Digit("4")])
    assert Record(30, 2) == transitions[-1].command
