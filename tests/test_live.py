"""What a SIGHUP reload applies now and what waits for a restart (`ivr.config.live`), as a table."""

from __future__ import annotations

import dataclasses

import pytest

from ivr.config.live import ReloadReport, live_settings, reload_report
from ivr.config.queues import QueueSurvey
from ivr.config.settings import AgiConfig, Config, DatabaseConfig, LogConfig, SurveyConfig
from ivr.config.values import AmiConfig

START = Config()


def with_section(config: Config, **sections: object) -> Config:
    return dataclasses.replace(
        config,
        **sections,  # type: ignore[arg-type]  # **sections: Config sections, by name
    )


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (START, START, ReloadReport()),
        (
            START,
            with_section(START, survey=SurveyConfig(prompt_agent="x/agent", max_attempts=2)),
            ReloadReport(applied=("survey.prompt_agent", "survey.max_attempts")),
        ),
        (
            START,
            with_section(START, log=LogConfig(level="DEBUG")),
            ReloadReport(applied=("log.level",)),
        ),
        (
            START,
            with_section(
                START,
                ami=AmiConfig(port=5039, secret="changed"),
                agi=AgiConfig(port=4574),
                database=DatabaseConfig(url="sqlite+aiosqlite:///other.db"),
            ),
            ReloadReport(
                need_restart=("ami.port", "ami.secret", "agi.port", "database.url"),
            ),
        ),
        (
            with_section(START, ami=AmiConfig(port=5039)),
            with_section(START, ami=AmiConfig(port=5039)),
            ReloadReport(need_restart=("ami.port",)),
        ),
    ],
    ids=["nothing", "survey keys", "log level", "restart keys", "restart key still pending"],
)
def test_reload_report_names_changed_keys_live_or_needing_a_restart(
    previous: Config, new: Config, expected: ReloadReport
) -> None:
    """Live keys count from the previous load; restart keys from start-up, until restarted."""
    assert expected == reload_report(START, previous, new)


def test_reload_report_never_carries_a_value() -> None:
    """The report is logged: a changed secret must appear by name only."""
    report = reload_report(START, START, with_section(START, ami=AmiConfig(secret="hunter2-xyz")))
    assert "hunter2-xyz" not in repr(report)


def test_live_settings_carry_the_survey_as_configured() -> None:
    """Prompts and timeouts from [survey] become the spec a new call (of a queue with
    no table of its own) runs with."""
    spec = (
        live_settings(
            with_section(START, survey=SurveyConfig(prompt_company="c/q", answer_timeout=2.5))
        )
        .planner.plan(None)
        .spec
    )
    assert ("agent-question", "c/q", 2.5) == (
        spec.questions[0].prompt.rsplit("/", 1)[1],
        spec.questions[1].prompt,
        spec.answer_timeout,
    )


def test_a_changed_queue_table_is_applied_live_and_named_by_its_section() -> None:
    """[queues.<name>] is a family of tables: a reload names it once and applies it."""
    changed = dataclasses.replace(START, queues={"sales": QueueSurvey(questions="csat")})
    report = reload_report(START, START, changed)
    assert (("queues",), ()) == (report.applied, report.need_restart)
