"""Per-queue survey choices and the new [survey] keys: parsed, checked, one line per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config.queues import QueueSurvey
from ivr.config.settings import Config, SurveyConfig, load
from ivr.config.survey_plan import SurveyPlanner
from ivr.config.values import ConfigError
from ivr.core import survey


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr-survey.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), environ={})
    return raised.value.problems


def test_queue_tables_are_read_in_their_own_words(tmp_path: Path) -> None:
    """Each [queues.<name>] becomes that queue's choices; keys left out stay empty."""
    text = """
[survey]
languages = "en, es"

[queues.support]
questions = "csat, fcr, ces"
language = "es"
language_mode = "queue"
comment = "detractors"

[queues.sales]
comment = "all"
"""
    config = load(write(tmp_path, text), environ={})
    expected = {
        "support": QueueSurvey("csat, fcr, ces", "es", "queue", "detractors"),
        "sales": QueueSurvey(comment="all"),
    }
    assert expected == dict(config.queues)


def test_no_queue_tables_means_no_queues(tmp_path: Path) -> None:
    """A file without [queues] behaves as before."""
    assert {} == dict(load(write(tmp_path, "[survey]\nmax_attempts = 2\n"), environ={}).queues)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[queues.support]\nquestions = "csat, nps"\n',
            [
                "[queues.support] questions: 'nps' is not a question "
                "(known: agent, company, csat, fcr, ces)"
            ],
        ),
        (
            '[queues.support]\ncomment = "sometimes"\n',
            ["[queues.support] comment: 'sometimes' is not one of off, all, detractors"],
        ),
        (
            '[queues.support]\nlanguage_mode = "ask"\n',
            ["[queues.support] language_mode: 'ask' is not one of channel, queue, choose"],
        ),
        (
            '[queues.support]\nlanguage = "Spanish"\n',
            ["[queues.support] language: 'Spanish' is not an Asterisk language code (like en, es)"],
        ),
        (
            "[queues.support]\nquestions = 3\n",
            ["[queues.support] questions: expected a string, got 3"],
        ),
        (
            '[queues.support]\ncolour = "red"\n',
            [
                "[queues.support] colour: unknown key "
                "(known: questions, language, language_mode, comment)"
            ],
        ),
        ('queues = "support"\n', ["[queues] must hold one [queues.<name>] table per queue"]),
        (
            '[survey]\nquestions = "agent, agent"\ncomment = "never"\n',
            [
                "[survey] questions: 'agent' is asked twice",
                "[survey] comment: 'never' is not one of off, all, detractors",
            ],
        ),
        (
            '[survey]\nrecordings_dir = "recordings"\ncomment_silence_seconds = 0\n',
            [
                "[survey] comment_max_seconds/comment_silence_seconds: must be more than 0",
                "[survey] recordings_dir: must be an absolute path (Asterisk records there)",
            ],
        ),
    ],
    ids=[
        "unknown question",
        "comment mode",
        "language mode",
        "language code",
        "not a string",
        "unknown key",
        "not a table",
        "survey defaults",
        "recordings",
    ],
)
def test_bad_queue_keys_are_one_line_each(tmp_path: Path, text: str, expected: list[str]) -> None:
    """Unknown question names and modes are config errors naming the queue and the key."""
    assert expected == problems_of(tmp_path, text)


def test_planner_gives_each_queue_its_survey() -> None:
    """A configured queue gets its questions and comment; others get the [survey] defaults."""
    config = Config(
        survey=SurveyConfig(languages="en,es", comment_max_seconds=30, comment_silence_seconds=2),
        queues={"support": QueueSurvey(questions="fcr,csat", comment="all", language="es")},
    )
    planner = SurveyPlanner(config)
    support, other, nameless = planner.plan("support"), planner.plan("sales"), planner.plan(None)
    expected = (
        (("fcr", 1, 2), ("csat", 1, 5)),
        survey.CommentSpec(survey.CommentWhen.ALL, "ivr-survey/comment", 30, 2),
        "es",
        (("agent", 0, 10), ("company", 0, 10)),
        None,
        "en",
        other,
    )
    actual = (
        tuple((q.key, q.low, q.high) for q in support.spec.questions),
        support.spec.comment,
        support.queue_language,
        tuple((q.key, q.low, q.high) for q in other.spec.questions),
        other.spec.comment,
        other.queue_language,
        nameless,
    )
    assert expected == actual
