"""The keypad state machine under any sequence of replies (`ivr.core.survey`).

Whatever the caller (or a confused Asterisk) does, the survey ends within a
bound set by `max_attempts`, stores each question at most once with a value in
0..10 or None, and raises only the documented "finished" error.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.core import survey
from tests.fuzz.settings import fuzz

replies = st.one_of(
    st.builds(survey.Digit, st.text(max_size=3)),
    st.builds(survey.Digit, st.sampled_from(list(survey.ANSWER_KEYS))),
    st.just(survey.PlayedOut()),
    st.just(survey.Timeout()),
    st.just(survey.HungUp()),
    st.just(survey.PromptMissing()),
)
specs = st.builds(
    survey.SurveySpec,
    questions=st.lists(
        st.sampled_from(["agent", "company", "extra"]), min_size=1, max_size=3, unique=True
    ).map(lambda keys: tuple(survey.Question(key, f"q/{key}") for key in keys)),
    intro=st.sampled_from(["", "intro"]),
    invalid=st.sampled_from(["", "invalid"]),
    no_input=st.sampled_from(["", "no-input"]),
    thanks=st.sampled_from(["", "thanks"]),
    max_attempts=st.integers(min_value=1, max_value=5),
)


def command_bound(spec: survey.SurveySpec) -> int:
    """Intro and thanks, plus per presentation: question, first wait, ten wait, retry prompt."""
    return 2 + len(spec.questions) * spec.max_attempts * 4


@fuzz(400)
@given(specs, st.data())
def test_any_reply_sequence_ends_within_the_bound_with_scores_in_range(
    spec: survey.SurveySpec, data: st.DataObject
) -> None:
    """Finish comes within the bound; stored values are 0..10 or None, once per question."""
    transition = survey.start(spec)
    stored = list(transition.store)
    commands = 1
    while not isinstance(transition.command, survey.Finish):
        assert commands <= command_bound(spec)
        transition = survey.step(transition.state, data.draw(replies))
        stored.extend(transition.store)
        commands += 1
    assert all(outcome.value is None or 0 <= outcome.value <= 10 for outcome in stored)
    assert len({outcome.question for outcome in stored}) == len(stored)
    assert all(1 <= outcome.attempts <= spec.max_attempts for outcome in stored)
    with pytest.raises(ValueError, match="the survey has finished"):
        survey.step(transition.state, data.draw(replies))
