"""Which survey a queue gets: its questions, comment and language rules, from the config.

Pure: built once from the frozen Config, looked up per call by queue name.
A queue without a `[queues.<name>]` table (or a call with no queue) gets the
`[survey]` defaults, which are the two NPS questions, no comment and the
channel's language unless the admin says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ivr.config.queues import QueueSurvey
from ivr.config.settings import Config, SurveyConfig
from ivr.core import survey
from ivr.core.language import menu_entries
from ivr.core.questions import DEFAULT_QUESTIONS, NPS_QUESTIONS, parse_names, question

_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class SurveyPlan:
    """One queue's survey before the caller's language is known."""

    spec: survey.SurveySpec
    language_mode: str
    queue_language: str
    offered: tuple[str, ...]
    menu_prompt: str
    recordings_dir: str = ""
    recording_format: str = "wav"

    @property
    def default_language(self) -> str:
        return self.offered[0]


def offered_languages(settings: SurveyConfig) -> tuple[str, ...]:
    """`[survey] languages` in order; the first is the default language."""
    return tuple(part for part in _SEPARATORS.split(settings.languages.strip()) if part) or ("en",)


def question_prompt(settings: SurveyConfig, name: str) -> str:
    prompt: str = getattr(settings, f"prompt_{name}")
    return prompt


def build_plan(settings: SurveyConfig, choices: QueueSurvey) -> SurveyPlan:
    offered = offered_languages(settings)
    names, _ = parse_names(choices.questions or settings.questions)
    when = survey.CommentWhen(choices.comment or settings.comment)
    comment = None
    if when is not survey.CommentWhen.OFF:
        comment = survey.CommentSpec(
            when,
            settings.prompt_comment,
            max_seconds=settings.comment_max_seconds,
            silence_seconds=settings.comment_silence_seconds,
        )
    # The 0-10 intro and invalid prompts explain "1 then 0 for ten"; other
    # scales get wording that fits any scale, and the question says its keys.
    questions = tuple(
        question(
            name,
            question_prompt(settings, name),
            invalid="" if name in NPS_QUESTIONS else settings.prompt_invalid_key,
        )
        for name in names
    )
    intro = settings.prompt_intro if names == DEFAULT_QUESTIONS else settings.prompt_intro_general
    spec = survey.SurveySpec(
        questions=questions,
        intro=intro,
        invalid=settings.prompt_invalid,
        no_input=settings.prompt_no_input,
        thanks=settings.prompt_thanks,
        answer_timeout=settings.answer_timeout,
        ten_timeout=settings.ten_timeout,
        max_attempts=settings.max_attempts,
        comment=comment,
    )
    return SurveyPlan(
        spec=spec,
        language_mode=choices.language_mode or settings.language_mode,
        queue_language=choices.language or offered[0],
        offered=offered,
        menu_prompt=settings.prompt_language_menu,
        recordings_dir=settings.recordings_dir,
        recording_format=settings.recording_format,
    )


class SurveyPlanner:
    """queue name -> SurveyPlan, computed once at start-up."""

    def __init__(self, config: Config) -> None:
        self._default = build_plan(config.survey, QueueSurvey())
        self._plans: Mapping[str, SurveyPlan] = MappingProxyType(
            {name: build_plan(config.survey, choices) for name, choices in config.queues.items()}
        )

    def plan(self, queue: str | None) -> SurveyPlan:
        if queue is None:
            return self._default
        return self._plans.get(queue, self._default)


def prompts_in_use(config: Config) -> tuple[str, ...]:
    """Every sound file some queue's survey may play (for `ivr-survey check`)."""
    plans = [build_plan(config.survey, QueueSurvey())]
    plans += [build_plan(config.survey, choices) for choices in config.queues.values()]
    names: list[str] = []
    for plan in plans:
        spec = plan.spec
        names += [spec.intro, *(q.prompt for q in spec.questions), spec.invalid, spec.no_input]
        names += [q.invalid for q in spec.questions]
        names.append(spec.thanks)
        if spec.comment is not None:
            names.append(spec.comment.prompt)
        if plan.language_mode == "choose" and len(plan.offered) > 1:
            names += [
                entry.split("/", 1)[1] for entry in menu_entries(plan.offered, plan.menu_prompt)
            ]
    return tuple(dict.fromkeys(name for name in names if name))
