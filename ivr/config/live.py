"""Settings that can change while the service runs (SIGHUP), and what a reload changed.

A reload builds a new immutable `LiveSettings` from the new configuration and
swaps it in one assignment; every survey reads the settings once, when it
starts, and keeps them to its end, so a caller half-way through never hears a
prompt from another configuration. Everything else (sockets, the database,
credentials) is bound at start-up: a change to it is reported as needing a
restart and is not applied.

To make another setting live: add a field to `LiveSettings`, build it in
`live_settings`, and add its section or key to `LIVE_KEYS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from ivr.config.settings import Config
from ivr.config.survey_plan import SurveyPlanner
from ivr.core.policy import PolicyRules

LIVE_KEYS: frozenset[str] = frozenset({"survey", "queues", "policy", "log.level"})
"""Sections (`survey`) or keys (`log.level`) applied by a reload without a restart."""


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """What a survey reads when it starts."""

    planner: SurveyPlanner
    policy: PolicyRules


def live_settings(config: Config) -> LiveSettings:
    return LiveSettings(planner=SurveyPlanner(config), policy=config.policy.rules())


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """The `section.key` names a reload changed: applied now, or waiting for a restart.

    Names only, never values: many keys are secrets.
    """

    applied: tuple[str, ...] = ()
    need_restart: tuple[str, ...] = ()


def changed_keys(old: Config, new: Config) -> tuple[str, ...]:
    """`section.key` for every key whose value differs, in configuration order.

    A section that is a family of tables (`[pbx.<name>]`, `[queues.<name>]`)
    is compared as a whole and named by its section alone.
    """
    changed: list[str] = []
    for section in fields(old):
        old_section: Any = getattr(old, section.name)
        new_section: Any = getattr(new, section.name)
        if not is_dataclass(old_section):
            if old_section != new_section:
                changed.append(section.name)
            continue
        for key in fields(old_section):
            if getattr(old_section, key.name) != getattr(new_section, key.name):
                changed.append(f"{section.name}.{key.name}")
    return tuple(changed)


def is_live(key: str) -> bool:
    return key in LIVE_KEYS or key.split(".", 1)[0] in LIVE_KEYS


def reload_report(started: Config, previous: Config, new: Config) -> ReloadReport:
    """Live keys changed since the previous load; other keys that differ from start-up.

    A key needing a restart is reported on every reload until the restart, so
    the last reload's log always says what is not yet in force.
    """
    return ReloadReport(
        applied=tuple(key for key in changed_keys(previous, new) if is_live(key)),
        need_restart=tuple(key for key in changed_keys(started, new) if not is_live(key)),
    )
