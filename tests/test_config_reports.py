"""`[reports] timezone`: the zone whose days every report counts."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.adapters.web.alerts import DetractorAlerts
from ivr.adapters.web.app import REPORTS
from ivr.config.settings import load
from ivr.config.values import ConfigError
from ivr.runtime.service import Service
from storage.database import create_engine, session_factory


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr-survey.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reports_timezone_defaults_to_utc() -> None:
    """Without the key the reports keep counting UTC days, as before."""
    assert ZoneInfo("UTC") == load(environ={}).reports.zone()


def test_reports_timezone_is_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    """The file's zone, and the environment's over it."""
    path = write(tmp_path, '[reports]\ntimezone = "Asia/Tehran"\n')
    from_file = load(path, environ={}).reports.zone()
    from_env = load(path, environ={"IVR_SURVEY_REPORTS_TIMEZONE": "Europe/Madrid"}).reports.zone()

    assert (ZoneInfo("Asia/Tehran"), ZoneInfo("Europe/Madrid")) == (from_file, from_env)


@pytest.mark.parametrize("name", ["Asia/Teheran", "UTC+3:30", "", "../../etc/passwd"])
def test_a_bad_reports_timezone_is_a_config_error_naming_the_key(tmp_path: Path, name: str) -> None:
    """Refused at load, one line naming [reports] timezone and the value."""
    path = write(tmp_path, f'[reports]\ntimezone = "{name}"\n')
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})

    assert [
        f"[reports] timezone: {name!r} is not an IANA time zone (like Europe/Madrid)"
    ] == caught.value.problems


def test_the_service_serves_reports_in_the_configured_zone() -> None:
    """The web server the service builds (without IO, not started) reads and
    refreshes Tehran's days."""
    config = load(environ={"IVR_SURVEY_REPORTS_TIMEZONE": "Asia/Tehran"})
    service = Service(config)
    sessions = session_factory(create_engine("sqlite+aiosqlite:///:memory:"))
    alerts = DetractorAlerts(config.alerts, dashboard_url=config.web.base_url())

    server = service._web_server(sessions, alerts)

    assert ZoneInfo("Asia/Tehran") == server.app[REPORTS].zone
