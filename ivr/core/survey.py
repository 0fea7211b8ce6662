"""The keypad survey as a pure state machine.

The call flow is where surveys lose answers, so it is kept free of IO and
tested as tables: `start(spec)` and `step(state, reply)` each return the next
state, the answers to persist *now*, and the one command to run. The AGI
adapter only translates commands into AGI and replies back.

Keypad rules. Each question has a scale `low`..`high` (NPS 0-10, CSAT 1-5,
customer effort 1-7, first-call resolution 1-2 stored as 1/0 through
`values`). On a 0-10 scale:
- 0 and 2-9 are scores at once; nothing can follow them.
- 1 is ambiguous: it waits `ten_timeout` for 0 (-> 10), # (-> 1) or nothing
  (-> 1). A hang-up in that wait stores nothing: the caller may have been
  about to press 0, and a wrong score does more harm than a missing one.
On a scale whose top is below 10 one key decides and nothing waits.
- A key pressed while the question still plays counts (barge-in).
- `*` asks the question again; any other key, or a digit outside the
  scale, is invalid.
- Invalid input plays the invalid prompt and asks again; no input plays the
  no-input prompt and asks again. A question is presented at most
  `max_attempts` times (every presentation, `*` repeats included, is an
  attempt, which bounds the call); then it is stored as unanswered (None,
  never 0) and the survey moves on. A question may set its own
  `max_attempts`.

After the questions an optional recorded comment (`CommentSpec`): a prompt,
then `Record`; the reply `Recorded` is handed over as `Transition.comment`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from ivr.core.domain import SurveyStatus

SCORE_KEYS = "0123456789"
ANSWER_KEYS = SCORE_KEYS + "*#"
REPEAT_KEY = "*"
CONFIRM_KEY = "#"


TEN = 10


@dataclass(frozen=True, slots=True)
class Question:
    """One question: `key` names it in storage; keys `low`..`high` answer it.

    `values`, when given, is what each key stores (`values[0]` for `low`);
    otherwise the key's number is stored. `max_attempts` None uses the spec's,
    `invalid` "" the spec's invalid prompt (which explains 0-10).
    """

    key: str
    prompt: str
    low: int = 0
    high: int = TEN
    values: tuple[int, ...] = ()
    max_attempts: int | None = None
    invalid: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high <= TEN:
            raise ValueError(f"question {self.key!r}: need 0 <= low < high <= 10")
        if self.values and len(self.values) != self.high - self.low + 1:
            raise ValueError(f"question {self.key!r}: one stored value per key")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"question {self.key!r}: max_attempts must be at least 1")

    @property
    def is_nps(self) -> bool:
        """A 0-10 recommendation question: the only kind NPS and detractors count."""
        return (self.low, self.high) == (0, TEN)

    def value_of(self, number: int) -> int:
        return self.values[number - self.low] if self.values else number


class CommentWhen(enum.StrEnum):
    """Who is asked for a recorded comment after the questions."""

    OFF = "off"
    ALL = "all"
    DETRACTORS = "detractors"


DETRACTOR_MAX = 6
"""An NPS answer of 0-6 makes the caller a detractor."""


@dataclass(frozen=True, slots=True)
class CommentSpec:
    """The recorded comment: its prompt, who gets it, and how long it may run."""

    when: CommentWhen
    prompt: str
    max_seconds: float
    silence_seconds: float


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
    comment: CommentSpec | None = None


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


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller (after a beep) until #, `silence_seconds` of silence or `max_seconds`."""

    max_seconds: float
    silence_seconds: float


Command = Play | WaitDigit | Record | Finish


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


class RecordEnd(enum.StrEnum):
    """What ended a recording, as RECORD FILE reports it."""

    DTMF = "dtmf"
    TIMEOUT = "timeout"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class Recorded:
    """The recording ended; `seconds` of audio were kept (a hang-up keeps the file too)."""

    ended_by: RecordEnd
    seconds: float


@dataclass(frozen=True, slots=True)
class RecordFailed:
    """Asterisk could not record (no file written); the caller may still be there."""


Reply = Digit | PlayedOut | Timeout | HungUp | PromptMissing | Recorded | RecordFailed


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
    COMMENT_PROMPT = "comment_prompt"
    RECORDING = "recording"
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
    comment: Recorded | None = None


def start(spec: SurveySpec) -> Transition:
    if spec.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    state = State(spec=spec, phase=Phase.INTRO)
    if spec.intro:
        # Interruptible: a caller who knows the survey answers the first
        # question during the intro, as during a question (barge-in).
        return Transition(state, Play(spec.intro, interruptible=True))
    return _next_question(state, index=0)


def step(state: State, reply: Reply) -> Transition:
    if state.phase is Phase.DONE:
        raise ValueError("the survey has finished; no reply is expected")
    if isinstance(reply, HungUp):
        return _finish(state, hung_up=True)
    if isinstance(reply, Recorded) and reply.ended_by is RecordEnd.HANGUP:
        finished = _finish(state, hung_up=True)
        return replace(finished, comment=reply)
    handler = _HANDLERS[state.phase]
    return handler(state, reply)


# --- phase handlers ----------------------------------------------------------


def _after_intro(state: State, reply: Reply) -> Transition:
    if isinstance(reply, Digit) and reply.key != REPEAT_KEY and state.spec.questions:
        asked = replace(state, phase=Phase.ASKING, index=0, attempts=1)
        return _first_key(asked, reply.key)
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


def _after_comment_prompt(state: State, reply: Reply) -> Transition:
    comment = state.spec.comment
    assert comment is not None
    if isinstance(reply, PromptMissing):
        return _thanks(state)
    return Transition(
        replace(state, phase=Phase.RECORDING),
        Record(comment.max_seconds, comment.silence_seconds),
    )


def _after_recording(state: State, reply: Reply) -> Transition:
    thanked = _thanks(state)
    if isinstance(reply, Recorded):
        return replace(thanked, comment=reply)
    return thanked


def _after_thanks(state: State, reply: Reply) -> Transition:
    return _finish(state, hung_up=False)


_HANDLERS = {
    Phase.INTRO: _after_intro,
    Phase.ASKING: _after_question_prompt,
    Phase.WAITING_FIRST: _after_first_wait,
    Phase.WAITING_TEN: _after_ten_wait,
    Phase.INVALID: _after_retry_prompt,
    Phase.NO_INPUT: _after_retry_prompt,
    Phase.COMMENT_PROMPT: _after_comment_prompt,
    Phase.RECORDING: _after_recording,
    Phase.THANKS: _after_thanks,
}


# --- building blocks ---------------------------------------------------------


def _first_key(state: State, key: str) -> Transition:
    if len(key) != 1:
        # One key per reply; anything else (empty, several) would make
        # `key in SCORE_KEYS` a substring test and store a score like 12.
        return _retry(state, Phase.INVALID)
    question = state.question
    if key == "1" and question.high == TEN and question.low <= 1:
        return Transition(
            replace(state, phase=Phase.WAITING_TEN), WaitDigit(state.spec.ten_timeout)
        )
    if key in SCORE_KEYS and question.low <= int(key) <= question.high:
        return _answer(state, int(key))
    if key == REPEAT_KEY:
        return _retry(state, None)
    return _retry(state, Phase.INVALID)


def _max_attempts(state: State) -> int:
    own = state.question.max_attempts
    return state.spec.max_attempts if own is None else own


def _ask(state: State) -> Transition:
    asked = replace(state, phase=Phase.ASKING, attempts=state.attempts + 1)
    return Transition(asked, Play(state.question.prompt, interruptible=True))


def _retry(state: State, why: Phase | None) -> Transition:
    """Ask again after `why` (INVALID, NO_INPUT, or None for a `*` repeat)."""
    if state.attempts >= _max_attempts(state):
        return _give_up(state)
    if why is Phase.INVALID:
        prompt = state.question.invalid or state.spec.invalid
    elif why is Phase.NO_INPUT:
        prompt = state.spec.no_input
    else:
        prompt = ""
    if why is not None and prompt:
        return Transition(replace(state, phase=why), Play(prompt, interruptible=False))
    return _ask(state)


def _answer(state: State, number: int) -> Transition:
    value = state.question.value_of(number)
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
    comment = state.spec.comment
    if comment is not None and wants_comment(comment.when, state):
        if not comment.prompt:
            return _after_comment_prompt(replace(state, phase=Phase.COMMENT_PROMPT), PlayedOut())
        return Transition(
            replace(state, phase=Phase.COMMENT_PROMPT), Play(comment.prompt, interruptible=False)
        )
    return _thanks(state)


def wants_comment(when: CommentWhen, state: State) -> bool:
    """`all` asks everyone; `detractors` only a caller with an NPS answer of 0-6."""
    if when is CommentWhen.ALL:
        return True
    if when is CommentWhen.DETRACTORS:
        nps = {question.key for question in state.spec.questions if question.is_nps}
        return any(
            outcome.question in nps and outcome.value is not None and outcome.value <= DETRACTOR_MAX
            for outcome in state.outcomes
        )
    return False


def _thanks(state: State) -> Transition:
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
