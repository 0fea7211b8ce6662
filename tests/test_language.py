"""Language rules and recording names: pure tables."""

from __future__ import annotations

import pytest

from ivr.adapters.fastagi.protocol import parse_reply
from ivr.adapters.fastagi.recordings import file_stem, record_command, record_reply
from ivr.core import survey
from ivr.core.language import chosen, localized, menu_spec, pick


@pytest.mark.parametrize(
    ("mode", "channel", "offered", "expected"),
    [
        ("channel", "ru", ("en", "es"), "ru"),
        ("channel", "", ("en", "es"), "es"),
        ("queue", "ru", ("en", "es"), "es"),
        ("choose", "ru", ("en", "es"), None),
        ("choose", "ru", ("en",), "en"),
    ],
)
def test_pick_follows_the_queue_mode(
    mode: str, channel: str, offered: tuple[str, ...], expected: str | None
) -> None:
    """channel keeps agi_language, queue forces the queue's, choose asks (unless one is offered)."""
    assert expected == pick(mode, channel=channel, queue="es", offered=offered)


def test_menu_is_one_question_with_one_entry_per_language() -> None:
    """Key n picks the n-th language; each entry is played from its own language's folder."""
    base = survey.SurveySpec(questions=(), invalid="inv", no_input="none", max_attempts=2)
    spec = menu_spec(("en", "es", "eu"), "ivr-survey/language-menu", base)
    question = spec.questions[0]
    expected = (
        "en/ivr-survey/language-menu-1&es/ivr-survey/language-menu-2&eu/ivr-survey/language-menu-3",
        1,
        3,
        ("inv", "none", 2, ""),
    )
    actual = (
        question.prompt,
        question.low,
        question.high,
        (spec.invalid, spec.no_input, spec.max_attempts, spec.thanks),
    )
    assert expected == actual


@pytest.mark.parametrize(("value", "expected"), [(1, "en"), (2, "es"), (None, "eu"), (3, "eu")])
def test_menu_answer_or_the_queue_language(value: int | None, expected: str) -> None:
    """No valid answer leaves the caller in the queue's language."""
    assert expected == chosen(("en", "es"), value, "eu")


def test_missing_prompts_come_from_the_default_language_folder() -> None:
    """Only prompts missing in the caller's language (and present in the default) change."""
    spec = survey.SurveySpec(
        questions=(survey.Question("agent", "p/agent"),),
        intro="p/intro",
        thanks="p/thanks",
        comment=survey.CommentSpec(survey.CommentWhen.ALL, "p/comment", 10, 2),
    )
    present = {("es", "p/agent"), ("en", "p/agent"), ("en", "p/thanks"), ("en", "p/comment")}
    result = localized(spec, "es", "en", lambda language, name: (language, name) in present)
    assert result.comment is not None
    expected = ("p/agent", "p/intro", "en/p/thanks", "en/p/comment")
    actual = (result.questions[0].prompt, result.intro, result.thanks, result.comment.prompt)
    assert expected == actual


def test_prompts_stay_as_named_when_the_sounds_are_not_visible() -> None:
    """Without a local sounds folder Asterisk's own fallback applies."""
    spec = survey.SurveySpec(questions=(), intro="p/intro")
    assert spec == localized(spec, "es", "en", None)


@pytest.mark.parametrize(
    ("pbx", "linkedid", "expected"),
    [
        ("pbx-paris", "1795329453.8", "pbx-paris-1795329453.8"),
        ("../etc", "1/2", "_._etc-1_2"),
        ("pbx one", "x;rm -rf", "pbx_one-x_rm_-rf"),
    ],
)
def test_recording_names_are_unique_and_safe(pbx: str, linkedid: str, expected: str) -> None:
    """Nothing but letters, digits, `.`, `_`, `-`; never a leading dot, never a slash."""
    assert expected == file_stem(pbx, linkedid)


def test_record_command_uses_res_agi_syntax() -> None:
    """Absolute path, format, `#`, limit in ms, offset 0, BEEP, whole seconds of silence."""
    command = record_command("/rec", "pbx-1.2", "wav", survey.Record(60.0, 2.6))
    assert 'RECORD FILE /rec/pbx-1.2 wav "#" 60000 0 BEEP s=3' == command


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=35 (dtmf) endpos=15040", survey.Recorded(survey.RecordEnd.DTMF, 1.88)),
        ("200 result=0 (timeout) endpos=16000", survey.Recorded(survey.RecordEnd.TIMEOUT, 2.0)),
        ("200 result=-1 (hangup) endpos=4000", survey.Recorded(survey.RecordEnd.HANGUP, 0.5)),
        ("200 result=-1 (writefile)", survey.RecordFailed()),
        ("200 result=-1 (randomerror) endpos=0", survey.RecordFailed()),
        ("511 Command Not Permitted on a dead channel or intercept routine", survey.HungUp()),
    ],
)
def test_record_replies_map_to_survey_replies(line: str, expected: survey.Reply) -> None:
    """endpos counts 8 kHz samples; a failed write records nothing."""
    assert expected == record_reply(parse_reply(line))
