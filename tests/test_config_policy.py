"""The [policy] and [privacy] sections: defaults survey every call, bad values one line each."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ivr.config.settings import load
from ivr.config.values import ConfigError
from ivr.core.policy import SURVEY_EVERY_CALL, parse_hours


def test_defaults_survey_every_call_and_keep_numbers() -> None:
    """With no [policy] or [privacy] section the service behaves as before the policy."""
    config = load(environ={})
    assert (SURVEY_EVERY_CALL, False, 0) == (
        config.policy.rules(),
        config.privacy.anonymize,
        config.privacy.retention_days,
    )


def test_policy_keys_are_read_into_the_pure_rules(tmp_path: Path) -> None:
    """Lists, caps, hours and the time zone become the values `decide` uses."""
    path = tmp_path / "ivr-survey.toml"
    path.write_text(
        "[policy]\n"
        "sample_percent = 12.5\n"
        "min_talk_seconds = 20\n"
        "cooldown_days = 30\n"
        "daily_cap = 100\n"
        'daily_caps = "sales:10, vip:0"\n'
        'exclude_queues = "internal, test"\n'
        'include_agents = "Agent One"\n'
        'hours = "mon-fri 08:00-18:00"\n'
        'timezone = "Europe/Madrid"\n'
        "exclude_transferred = true\n",
        encoding="utf-8",
    )
    rules = load(path, environ={}).policy.rules()
    expected = (
        12.5,
        20,
        timedelta(days=30),
        100,
        {"sales": 10, "vip": 0},
        frozenset({"internal", "test"}),
        frozenset({"Agent One"}),
        parse_hours("mon-fri 08:00-18:00"),
        "Europe/Madrid",
        True,
    )
    actual = (
        rules.sample_percent,
        rules.min_talk_seconds,
        rules.cooldown,
        rules.daily_cap,
        dict(rules.daily_caps),
        rules.exclude_queues,
        rules.include_agents,
        rules.hours,
        rules.zone.key,
        rules.exclude_transferred,
    )
    assert expected == actual


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("no", False), ("false", False)],
)
def test_booleans_from_the_environment(text: str, expected: bool) -> None:
    """IVR_SURVEY_PRIVACY_ANONYMIZE=yes and friends."""
    environ = {"IVR_SURVEY_PRIVACY_ANONYMIZE": text, "IVR_SURVEY_PRIVACY_HASH_KEY": "k" * 32}
    assert expected == load(environ=environ).privacy.anonymize


def test_every_bad_policy_and_privacy_key_is_one_line(tmp_path: Path) -> None:
    """Each problem names its key; the hash key itself is never shown."""
    path = tmp_path / "ivr-survey.toml"
    path.write_text(
        "[policy]\n"
        "sample_percent = 120\n"
        "cooldown_days = -1\n"
        'daily_caps = "sales"\n'
        'hours = "mon-fri 18:00-08:00"\n'
        'timezone = "Europe/Atlantis"\n'
        'exclude_transferred = "maybe"\n'
        "[privacy]\n"
        "anonymize = true\n"
        "retention_days = -3\n"
        "purge_interval_hours = 0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert [
        "[policy] exclude_transferred: expected true or false, got 'maybe'",
        "[policy] sample_percent: 120.0 is not between 0 and 100",
        "[policy] cooldown_days: must not be negative",
        "[policy] daily_caps: 'sales' is not queue:N with N a whole number >= 0",
        "[policy] hours: 'mon-fri 18:00-08:00': '18:00-08:00' ends before it starts "
        "(split a night shift in two entries)",
        "[policy] timezone: 'Europe/Atlantis' is not an IANA time zone (like Europe/Madrid)",
        "[privacy] hash_key: needed when anonymize is on (caller numbers are stored as its HMAC)",
        "[privacy] retention_days: must not be negative (0 keeps numbers forever)",
        "[privacy] purge_interval_hours: must be more than 0",
    ] == caught.value.problems


def test_the_hash_key_is_kept_out_of_repr() -> None:
    """The config may be logged; the key that protects the numbers may not."""
    environ = {"IVR_SURVEY_PRIVACY_ANONYMIZE": "1", "IVR_SURVEY_PRIVACY_HASH_KEY": "top-secret-key"}
    assert "top-secret-key" not in repr(load(environ=environ))
