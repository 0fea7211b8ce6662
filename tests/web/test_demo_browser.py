"""The demo as a newcomer meets it: the exact dashboard URL it prints, opened in
headless Chromium, shows the dashboard signed in, with figures."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest

from tests.helpers.cli_process import CliProcess
from tests.web.webdriver import CHROMEDRIVER, CHROMIUM, chromium, metrics

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DASHBOARD_LINE = re.compile(r"dashboard \(opens signed in, once\): (?P<url>\S+)")
CALLS_BEFORE_LOOKING = 6
HISTORY_DAYS = 30

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


async def _read_until(stream: asyncio.StreamReader, wanted: re.Pattern[str]) -> re.Match[str]:
    seen: list[str] = []
    while line := (await stream.readline()).decode("utf-8", "replace"):
        seen.append(line)
        if found := wanted.search(line):
            return found
    raise AssertionError("the demo ended without printing it:\n" + "".join(seen[-40:]))


async def test_the_printed_dashboard_url_opens_the_dashboard_signed_in(tmp_path: Path) -> None:
    """No login form: the link sets the session, and the overview shows the generated
    month of history (a trend, and agents ranked top and bottom) beside the live calls."""
    demo = await CliProcess.start(
        "demo", "--seed", "3", cwd=tmp_path, env={"IVR_SURVEY_WEB_PORT": "0"}
    )
    stdout = demo.process.stdout
    assert stdout is not None
    try:
        async with asyncio.timeout(120):
            url = (await _read_until(stdout, DASHBOARD_LINE))["url"]
            for _ in range(CALLS_BEFORE_LOOKING):
                await _read_until(stdout, re.compile(r"^call "))
            async with chromium(1600, 1000) as browser:
                await browser.open(url)
                await browser.wait_for("header.top")
                landed = await browser.url()
                shown = metrics(await browser.source())
                await browser.screenshot(ARTIFACTS / "demo-first-look-desktop.png")
                await browser.emulate_screen(390, 844)
                await browser.open(landed)
                await browser.screenshot(ARTIFACTS / "demo-first-look-phone.png")
    finally:
        demo.send(signal.SIGINT)
        await demo.exit_code()

    assert landed.endswith("/dashboard")
    assert int(shown["funnel-handled"].replace(",", "")) >= HISTORY_DAYS * 4 * 10
    assert {"top-0", "top-1", "bottom-0", "bottom-1"} <= set(shown), shown
