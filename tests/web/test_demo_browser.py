"""The demo as a newcomer meets it: the exact dashboard URL it prints, opened in
headless Chromium, shows the dashboard signed in, with figures."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.web.webdriver import CHROMEDRIVER, CHROMIUM, chromium, metrics

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DASHBOARD_LINE = re.compile(r"dashboard \(opens signed in, once\): (?P<url>\S+)")
CALLS_BEFORE_LOOKING = 6

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
    """No login form: the link sets the session and the overview shows stored calls."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IVR_SURVEY_")}
    environment["IVR_SURVEY_WEB_PORT"] = "0"
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr",
        "demo",
        "--seed",
        "3",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert demo.stdout is not None
    try:
        async with asyncio.timeout(120):
            url = (await _read_until(demo.stdout, DASHBOARD_LINE))["url"]
            for _ in range(CALLS_BEFORE_LOOKING):
                await _read_until(demo.stdout, re.compile(r"^call "))
            async with chromium(390, 844) as browser:
                await browser.open(url)
                await browser.wait_for("header.top")
                landed = await browser.url()
                shown = metrics(await browser.source())
                await browser.screenshot(ARTIFACTS / "demo-first-look-phone.png")
    finally:
        demo.send_signal(signal.SIGINT)
        await asyncio.wait_for(demo.wait(), 30)

    assert landed.endswith("/dashboard")
    assert int(shown["funnel-handled"]) >= CALLS_BEFORE_LOOKING - 2
