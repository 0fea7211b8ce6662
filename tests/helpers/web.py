"""The web tests' settings: tokens, users, the app over a report reader."""

from __future__ import annotations

from aiohttp import web

from ivr.adapters.web import FixedMetrics, create_app
from ivr.adapters.web.auth import hash_password
from ivr.config.settings import WebConfig
from storage.analytics import SqlReportReader
from tests.web.scenario import NOW

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
PASSWORD = "correct horse battery"
# Few iterations: the tests check the scheme, not its cost.
PASSWORD_HASH = hash_password(PASSWORD, iterations=1000, salt=b"0123456789abcdef")
MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


def settings(**overrides: object) -> WebConfig:
    values: dict[str, object] = {
        "port": 0,
        "tokens": f"admin:{ADMIN_TOKEN} viewer:{VIEWER_TOKEN}",
        "users": f"manager:admin:{PASSWORD_HASH},wall:viewer:{PASSWORD_HASH}",
        "session_secret": "test-session-secret",
        "min_n": 3,
    }
    values.update(overrides)
    return WebConfig(**values)  # type: ignore[arg-type]


def app_for(reader: SqlReportReader, **overrides: object) -> web.Application:
    return create_app(
        settings(**overrides),
        reader,
        FixedMetrics(),
        today=NOW.date,
        refresh_rollups=False,
    )
