"""Configuration: TOML file, environment overrides, one line per bad key, secret kept out."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config.settings import load
from ivr.config.values import ConfigError

GOOD = """
[ami]
host = "10.0.0.5"
port = 5038
username = "ivr"
secret = "s3cret-value"
name = "pbx-paris"

[agi]
port = 4600

[database]
url = "postgresql+asyncpg://ivr:pw@db/ivr"

[survey]
ten_timeout = 2
max_attempts = 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr-survey.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_values_are_read_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    """Keys present in the file win; everything else keeps its documented default."""
    config = load(write(tmp_path, GOOD), environ={})
    expected = ("10.0.0.5", "pbx-paris", 4600, "127.0.0.1", 2.0, 2, "ivr-survey/intro")
    actual = (
        config.ami.host,
        config.ami.name,
        config.agi.port,
        config.agi.host,
        config.survey.ten_timeout,
        config.survey.max_attempts,
        config.survey.prompt_intro,
    )
    assert expected == actual


def test_environment_overrides_every_key(tmp_path: Path) -> None:
    """IVR_SURVEY_<SECTION>_<KEY> beats the file, so containers need no file edits."""
    environ = {
        "IVR_SURVEY_AMI_HOST": "asterisk.internal",
        "IVR_SURVEY_AMI_PORT": "15038",
        "IVR_SURVEY_DATABASE_URL": "sqlite+aiosqlite:////tmp/x.db",
        "IVR_SURVEY_SURVEY_TEN_TIMEOUT": "0.8",
    }
    config = load(write(tmp_path, GOOD), environ=environ)
    expected = ("asterisk.internal", 15038, "sqlite+aiosqlite:////tmp/x.db", 0.8)
    actual = (config.ami.host, config.ami.port, config.database.url, config.survey.ten_timeout)
    assert expected == actual


def test_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    """IVR_SURVEY_CONFIG names the file when --config is not given."""
    path = write(tmp_path, GOOD)
    assert "pbx-paris" == load(None, environ={"IVR_SURVEY_CONFIG": str(path)}).ami.name


def test_every_bad_key_is_reported_on_its_own_line(tmp_path: Path) -> None:
    """An admin sees all problems at once, each naming its key."""
    text = """
[ami]
port = "five"
hostname = "x"
reconnect_min = 0

[survey]
max_attempts = 0
prompt_thanks = "thanks file.wav"

[surveys]
x = 1
"""
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text), environ={"IVR_SURVEY_AGI_PORT": "http"})
    expected = [
        "[ami] hostname: unknown key (known: host, port, username, secret, name, "
        "connect_timeout, action_timeout, ping_interval, ping_timeout, reconnect_min, "
        "reconnect_max, auth_retry_min, max_list_items, max_tracked_calls, max_queued_events)",
        "[ami] port: expected a whole number, got 'five'",
        "[ami] reconnect_min/reconnect_max: need 0 < reconnect_min <= reconnect_max",
        "IVR_SURVEY_AGI_PORT (environment): expected a whole number, got 'http'",
        "[survey] prompt_thanks: 'thanks file.wav' is not a sound file name "
        "(letters, digits, _ . / - only, no extension needed)",
        "[survey] max_attempts: 0 must be at least 1",
        "[surveys]: unknown section "
        "(known: ami, agi, database, survey, tracking, log, web, alerts, policy, privacy, reports)",
    ]
    assert expected == caught.value.problems


def test_missing_and_broken_files_are_one_clear_line(tmp_path: Path) -> None:
    """No traceback for a typo in a path or in the TOML."""
    with pytest.raises(ConfigError) as missing:
        load(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError) as broken:
        load(write(tmp_path, "[ami\nhost="), environ={})
    assert [f"{tmp_path / 'nope.toml'}: no such configuration file"] == missing.value.problems
    assert broken.value.problems[0].startswith(f"{tmp_path / 'ivr-survey.toml'}: not valid TOML")


def test_secret_and_database_url_never_appear_in_repr(tmp_path: Path) -> None:
    """Logging the config object must not leak the AMI secret or the DB password."""
    config = load(write(tmp_path, GOOD), environ={})
    assert ("s3cret-value" in repr(config), "pw@" in repr(config)) == (False, False)


def test_survey_languages_must_be_asterisk_language_codes(tmp_path: Path) -> None:
    """`languages` names the sounds/<lang> folders `check` looks in."""
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, '[survey]\nlanguages = "en, es, Spanish"\n'), environ={})
    expected = [
        "[survey] languages: 'Spanish' is not an Asterisk language code (like en, es, pt_BR)"
    ]
    assert expected == caught.value.problems


def test_the_dashboard_language_must_be_one_we_speak(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, '[web]\nlanguage = "de"\n'), environ={})

    assert ["[web] language: 'de' is not one of en, fa, ru, eu, es"] == caught.value.problems


def test_default_database_url_applies_only_when_none_is_configured() -> None:
    """`demo` and first runs get a SQLite file without any configuration."""
    config = load(None, environ={}, default_database_url="sqlite+aiosqlite:///./x.db")
    assert "sqlite+aiosqlite:///./x.db" == config.database.url


def test_the_default_database_url_keeps_the_other_database_keys() -> None:
    """Filling in the default URL must not reset the spool directory or batch size."""
    environ = {
        "IVR_SURVEY_DATABASE_SPOOL_DIR": "/var/spool/ivr",
        "IVR_SURVEY_DATABASE_BATCH_SIZE": "50",
    }
    config = load(None, environ=environ, default_database_url="sqlite+aiosqlite:///./x.db")

    expected = ("sqlite+aiosqlite:///./x.db", "/var/spool/ivr", 50)
    assert expected == (config.database.url, config.database.spool_dir, config.database.batch_size)


def test_a_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    """A writer that may commit nothing per transaction would never write."""
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, "[database]\nbatch_size = 0\n"), environ={})

    assert ["[database] batch_size: 0 must be at least 1"] == raised.value.problems
