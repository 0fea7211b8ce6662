"""`ivr-survey export` and `report` read --since/--until in [reports] timezone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from storage.database import create_engine, session_factory, upgrade
from tests.helpers.cli import ivr_survey
from tests.helpers.writes import committed_writes_on
from tests.storage.zone_surveys import store_surveys

# Mar 3 at 23:59 in Tehran (UTC+3:30), then Mar 4 at 00:01 and 02:30.
MOMENTS = (
    datetime(2025, 3, 3, 20, 29, tzinfo=UTC),
    datetime(2025, 3, 3, 20, 31, tzinfo=UTC),
    datetime(2025, 3, 3, 23, 0, tzinfo=UTC),
)


async def test_export_without_an_offset_cuts_the_configured_zones_days(tmp_path: Path) -> None:
    """Tehran's Mar 4 holds two of the surveys, UTC's none of them; a bound with
    an offset is taken as written."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'zones.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with committed_writes_on(session_factory(engine)) as writes:
            await store_surveys(writes, MOMENTS)
    finally:
        await engine.dispose()
    counted = {}
    for name, zone, since in (
        ("tehran", "Asia/Tehran", "2025-03-04"),
        ("utc", "UTC", "2025-03-04"),
        ("offset", "Asia/Tehran", "2025-03-04T00:00+00:00"),
    ):
        env = {"IVR_SURVEY_DATABASE_URL": url, "IVR_SURVEY_REPORTS_TIMEZONE": zone}
        until = "2025-03-05" if since == "2025-03-04" else "2025-03-05T00:00+00:00"
        result = ivr_survey("export", "--since", since, "--until", until, cwd=tmp_path, env=env)
        assert 0 == result.returncode, result.stderr[-2000:]
        counted[name] = len(list(csv.DictReader(io.StringIO(result.stdout))))

    assert {"tehran": 2, "utc": 0, "offset": 0} == counted
