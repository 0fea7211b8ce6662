"""Which language a caller hears, and which prompt file that means: pure rules.

`language_mode` per queue: `channel` keeps the channel's language
(agi_language), `queue` uses the queue's default, `choose` asks with a menu
("for English press 1, para español pulse 2"). The survey then sets
CHANNEL(language) so Asterisk plays `sounds/<lang>/ivr-survey/...`.

A prompt missing in that language is played from the default language by
naming its folder (`es/ivr-survey/thanks`): Asterisk looks for a file under
`sounds/<channel language>/` first and then under `sounds/` itself, where
`es/ivr-survey/thanks` is found. The service can only know what is missing
when the sounds folder is visible from here (`[survey] sounds_dir`);
otherwise the name is left as it is and Asterisk's own fallback applies
(`sounds/<name>`, then `sounds/en/<name>`; a file missing everywhere is
skipped, see `survey.PromptMissing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ivr.core import survey

LANGUAGE_QUESTION = "language"
"""The menu's key in the machine; its answer is never stored as a survey answer."""

PromptExists = Callable[[str, str], bool]
"""(language, prompt name) -> whether that language has the prompt."""


def pick(mode: str, *, channel: str, queue: str, offered: Sequence[str]) -> str | None:
    """The caller's language, or None when the menu must ask (more than one offered)."""
    if mode == "queue":
        return queue
    if mode == "choose":
        return None if len(offered) > 1 else (offered[0] if offered else queue)
    return channel or queue


def menu_entries(offered: Sequence[str], menu_prompt: str) -> tuple[str, ...]:
    """One prompt per offered language, each in its own language: `es/<menu>-2`."""
    return tuple(
        f"{language}/{menu_prompt}-{number}" for number, language in enumerate(offered, start=1)
    )


def menu_spec(
    offered: Sequence[str], menu_prompt: str, spec: survey.SurveySpec
) -> survey.SurveySpec:
    """The menu as a one-question survey: key n picks the n-th offered language.

    The entries are joined with `&` (as in Playback); the adapter plays them in
    turn, any key stopping them.
    """
    if len(offered) < 2:
        raise ValueError("a language menu needs at least two languages")
    question = survey.Question(
        LANGUAGE_QUESTION,
        "&".join(menu_entries(offered, menu_prompt)),
        low=1,
        high=len(offered),
    )
    return survey.SurveySpec(
        questions=(question,),
        invalid=spec.invalid,
        no_input=spec.no_input,
        answer_timeout=spec.answer_timeout,
        max_attempts=spec.max_attempts,
    )


def chosen(offered: Sequence[str], value: int | None, default: str) -> str:
    """The language for the menu's answer; the default when nothing valid was pressed."""
    if value is None or not 1 <= value <= len(offered):
        return default
    return offered[value - 1]


def localized(
    spec: survey.SurveySpec, language: str, default: str, exists: PromptExists | None
) -> survey.SurveySpec:
    """The spec with each prompt missing in `language` taken from `default`'s folder."""
    if exists is None or language == default:
        return spec

    def prompt(name: str) -> str:
        if not name or exists(language, name) or not exists(default, name):
            return name
        return f"{default}/{name}"

    comment = spec.comment
    if comment is not None:
        comment = replace(comment, prompt=prompt(comment.prompt))
    return replace(
        spec,
        questions=tuple(
            replace(q, prompt=prompt(q.prompt), invalid=prompt(q.invalid)) for q in spec.questions
        ),
        intro=prompt(spec.intro),
        invalid=prompt(spec.invalid),
        no_input=prompt(spec.no_input),
        thanks=prompt(spec.thanks),
        comment=comment,
    )
