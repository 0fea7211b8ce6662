"""The keypad survey as a pure state machine.

The call flow is where surveys lose answers, so it is kept free of IO and
tested as tables: `start(spec)` and `step(state, reply)` each return the next
state, the answers to persist *now*, and the one command to run. The AGI
adapter only translates commands into AGI and replies back.

Keypad rules (callers answer 0 to 10 on a phone keypad):
- 0 and 2-9 are scores at once; nothing can follow them.
- 1 is ambiguous: it waits `ten_timeout` for 0 (-> 10), # (-> 1) or nothing
  (-> 1). A hang-up in that wait stores nothing: the caller may have been
  about to press 0, and a wrong score does more harm than a missing one.
- A key pressed while the question still plays counts (barge-in).
- `*` asks the question again; anything else is invalid.
- Invalid input plays the invalid prompt and asks again; no input plays the
  no-input prompt and asks again. A question is presented at most
  `max_attempts` times (every presentation, `*` repeats included, is an
  attempt, which bounds the call); then it is stored as unanswered (None,
  never 0) and the survey moves on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from ivr.domain import SurveyStatus

SCORE_KEYS = "0123456789"
ANSWER_KEYS = SCORE_KEYS + "*#"
REPEAT_KEY = "*"
CONFIRM_KEY = "#"


@dataclass(frozen=True, slots=True)
class Question:
    key: str
    prompt: str


@dataclass(frozen=True, slots=True)
class SurveySpec:
    """Everything the flow needs to know; prompts set to "" are skipped."""

    questions: tuple[Question, ...]
    intro: str = ""
    invalid: str = ""
    no_input: str = ""
    thanks: str = ""
    answer_timeout: float = 5.0
    ten_timeout: float = 1.5
    max_attempts: int = 3


# --- commands (what the adapter must do next) -------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """Play a prompt; when `interruptible`, any answer key stops it and is the reply."""

    prompt: str
    interruptible: bool


@dataclass(frozen=True, slots=True)
class WaitDigit:
    seconds: float


@dataclass(frozen=True, slots=True)
class Finish:
    status: SurveyStatus


Command = Play | WaitDigit | Finish


# --- replies (what happened) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digit:
    key: str


@dataclass(frozen=True, slots=True)
class PlayedOut:
    """The prompt played to its end with no key."""


@dataclass(frozen=True, slots=True)
class Timeout:
    """A digit wait ended with no key."""


@dataclass(frozen=True, slots=True)
class HungUp:
    """The caller is gone."""


@dataclass(frozen=True, slots=True)
class PromptMissing:
    """The prompt could not be played but the caller is still on the line.

    Asterisk answers a missing sound file exactly like a hang-up (fact 52); the
    adapter tells the two apart and reports this one so the caller is not
    dropped for an admin's mistake.
    """


Reply = Digit | PlayedOut | Timeout | HungUp | PromptMissing


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question's result, to be stored the moment it is known."""

    question: str
    value: int | None
    attempts: int


class Phase(enum.Enum):
    INTRO = "intro"
    ASKING = "asking"
    WAITING_FIRST = "waiting_first"
    WAITING_TEN = "waiting_ten"
    INVALID = "invalid"
    NO_INPUT = "no_input"
    THANKS = "thanks"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class State:
    spec: SurveySpec
    phase: Phase
    index: int = 0
    attempts: int = 0
    outcomes: tuple[Outcome, ...] = ()

    @property
    def question(self) -> Question:
        return self.spec.questions[self.index]

    @property
    def answered(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.value is not None)


@dataclass(frozen=True, slots=True)
class Transition:
    state: State
    command: Command
    store: tuple[Outcome, ...] = ()


def start(spec: SurveySpec) -> Transition:
    if spec.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    state = State(spec=spec, phase=Phase.INTRO)
    if spec.intro:
        return Transition(state, Play(spec.intro, interruptible=False))
    return _next_question(state, index=0)


def step(state: State, reply: Reply) -> Transition:
    if state.phase is Phase.DONE:
        raise ValueError("the survey has finished; no reply is expected")
    if isinstance(reply, HungUp):
        return _finish(state, hung_up=True)
    handler = _HANDLERS[state.phase]
    return handler(state, reply)


# --- phase handlers ----------------------------------------------------------


def _after_intro(state: State, reply: Reply) -> Transition:
    return _next_question(state, index=0)


def _after_question_prompt(state: State, reply: Reply) -> Transition:
    if isinstance(reply, Digit):
        return _first_key(state, reply.key)
    if isinstance(reply, PromptMissing):
        return _give_up(state)
    return Transition(
        replace(state, phase=Phase.WAITING_FIRST), WaitDigit(state.spec.answer_timeout)
    )


def _after_first_wait(state: State, reply: Reply) -> Transition:
    if isinstance(reply, Digit):
        return _first_key(state, reply.key)
    return _retry(state, Phase.NO_INPUT)


def _after_ten_wait(state: State, reply: Reply) -> Transition:
    if isinstance(reply, Digit):
        if reply.key == "0":
            return _answer(state, 10)
        if reply.key == CONFIRM_KEY:
            return _answer(state, 1)
        return _retry(state, Phase.INVALID)
    return _answer(state, 1)


def _after_retry_prompt(state: State, reply: Reply) -> Transition:
    return _ask(state)


def _after_thanks(state: State, reply: Reply) -> Transition:
    return _finish(state, hung_up=False)


_HANDLERS = {
    Phase.INTRO: _after_intro,
    Phase.ASKING: _after_question_prompt,
    Phase.WAITING_FIRST: _after_first_wait,
    Phase.WAITING_TEN: _after_ten_wait,
    Phase.INVALID: _after_retry_prompt,
    Phase.NO_INPUT: _after_retry_prompt,
    Phase.THANKS: _after_thanks,
}


# --- building blocks ---------------------------------------------------------


def _first_key(state: State, key: str) -> Transition:
    if len(key) != 1:
        # One key per reply; anything else (empty, several) would make
        # `key in SCORE_KEYS` a substring test and store a score like 12.
        return _retry(state, Phase.INVALID)
    if key == "1":
        return Transition(
            replace(state, phase=Phase.WAITING_TEN), WaitDigit(state.spec.ten_timeout)
        )
    if key in SCORE_KEYS:
        return _answer(state, int(key))
    if key == REPEAT_KEY:
        return _retry(state, None)
    return _retry(state, Phase.INVALID)


def _ask(state: State) -> Transition:
    asked = replace(state, phase=Phase.ASKING, attempts=state.attempts + 1)
    return Transition(asked, Play(state.question.prompt, interruptible=True))


def _retry(state: State, why: Phase | None) -> Transition:
    """Ask again after `why` (INVALID, NO_INPUT, or None for a `*` repeat)."""
    if state.attempts >= state.spec.max_attempts:
        return _give_up(state)
    if why is Phase.INVALID:
        prompt = state.spec.invalid
    elif why is Phase.NO_INPUT:
        prompt = state.spec.no_input
    else:
        prompt = ""
    if why is not None and prompt:
        return Transition(replace(state, phase=why), Play(prompt, interruptible=False))
    return _ask(state)


def _answer(state: State, value: int) -> Transition:
    return _record(state, Outcome(state.question.key, value, state.attempts))


def _give_up(state: State) -> Transition:
    return _record(state, Outcome(state.question.key, None, state.attempts))


def _record(state: State, outcome: Outcome) -> Transition:
    recorded = replace(state, outcomes=(*state.outcomes, outcome))
    following = _next_question(recorded, index=state.index + 1)
    return Transition(following.state, following.command, (outcome, *following.store))


def _next_question(state: State, index: int) -> Transition:
    if index < len(state.spec.questions):
        return _ask(replace(state, index=index, attempts=0))
    if state.spec.thanks:
        return Transition(
            replace(state, phase=Phase.THANKS), Play(state.spec.thanks, interruptible=False)
        )
    return _finish(state, hung_up=False)


def _finish(state: State, *, hung_up: bool) -> Transition:
    done = replace(state, phase=Phase.DONE)
    return Transition(done, Finish(status_of(done, hung_up=hung_up)))


def status_of(state: State, *, hung_up: bool) -> SurveyStatus:
    """Where the survey stopped, from what was stored (see SurveyStatus)."""
    all_asked = len(state.outcomes) == len(state.spec.questions)
    if all_asked or not hung_up:
        return SurveyStatus.COMPLETED if state.answered else SurveyStatus.NO_ANSWER
    return SurveyStatus.PARTIAL if state.answered else SurveyStatus.HUNG_UP
