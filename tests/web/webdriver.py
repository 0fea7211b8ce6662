"""Just enough of the W3C WebDriver protocol to drive Debian's chromium-driver.

No selenium or playwright is installed, and the chromium binary's own
--dump-dom cannot log in through a form; chromedriver speaks plain JSON over
HTTP, so a few requests with aiohttp do: open a page, type, click, read the
page source, take a screenshot. JavaScript is switched off in the browser,
which is also how the dashboard proves it needs none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Chromium's WebDriver extension: element ids come back under this key.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Browser:
    def __init__(self, http: aiohttp.ClientSession, session_id: str) -> None:
        self._http = http
        self._session = session_id

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self._http.request(
            method, f"/session/{self._session}{path}", json=body
        ) as reply:
            document = await reply.json()
            if reply.status != 200:
                raise RuntimeError(f"WebDriver {method} {path}: {document}")
            return document["value"]

    async def open(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def url(self) -> str:
        value: str = await self._call("GET", "/url")
        return value

    async def source(self) -> str:
        value: str = await self._call("GET", "/source")
        return value

    async def _element(self, css: str) -> str:
        found = await self._call("POST", "/element", {"using": "css selector", "value": css})
        element: str = found[ELEMENT]
        return element

    async def type(self, css: str, text: str) -> None:
        element = await self._element(css)
        await self._call("POST", f"/element/{element}/value", {"text": text})

    async def wait_for(self, css: str) -> None:
        """Until an element matching `css` is on the page (up to the implicit wait)."""
        await self._element(css)

    async def click(self, css: str) -> None:
        element = await self._element(css)
        await self._call("POST", f"/element/{element}/click", {})

    async def emulate_screen(self, width: int, height: int) -> None:
        """Lay pages out for a `width` x `height` phone screen (CSS pixels)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        await self._call(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Emulation.setDeviceMetricsOverride", "params": metrics},
        )

    async def script(self, source: str) -> Any:
        """Run `source` (a function body) in the page; chromedriver runs it even
        with the page's own JavaScript off, so the tests can measure layouts."""
        return await self._call("POST", "/execute/sync", {"script": source, "args": []})

    async def screenshot(self, path: Path) -> None:
        image = base64.b64decode(await self._call("GET", "/screenshot"))
        await asyncio.to_thread(_save, path, image)


MIN_WINDOW_WIDTH = 500


@contextlib.asynccontextmanager
async def chromium(width: int = 1600, height: int = 2000) -> AsyncIterator[Browser]:
    """A headless Chromium with JavaScript off, driven through chromedriver."""
    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    port = _free_port()
    driver = await asyncio.create_subprocess_exec(
        CHROMEDRIVER,
        f"--port={port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(20):
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get("/status") as reply:
                            if (await reply.json())["value"]["ready"]:
                                break
                    await asyncio.sleep(0.1)
            options = {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    f"--window-size={width},{height}",
                ],
                "prefs": {"profile.managed_default_content_settings.javascript": 2},
            }

            capabilities = {"alwaysMatch": {"goog:chromeOptions": options}}
            async with http.post("/session", json={"capabilities": capabilities}) as reply:
                session_id = (await reply.json())["value"]["sessionId"]
            browser = Browser(http, session_id)
            # Finding an element waits this long for it: a form's submission
            # returns before the next page has loaded.
            await browser._call("POST", "/timeouts", {"implicit": 10_000})
            if width < MIN_WINDOW_WIDTH:
                # A headless window is never narrower than 500 px: a phone's
                # screen is emulated instead, as DevTools' device mode does.
                await browser.emulate_screen(width, height)
            try:
                yield browser
            finally:
                async with http.delete(f"/session/{session_id}"):
                    pass
    finally:
        driver.terminate()
        await driver.wait()


# HTML elements that never have an end tag.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _Metrics(HTMLParser):
    """Collects the text of every element carrying a data-metric attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}
        self._open: list[tuple[str, int, list[str]]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        self._depth += 1
        name = dict(attrs).get("data-metric")
        if name is not None:
            self._open.append((name, self._depth, []))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if self._open and self._open[-1][1] == self._depth:
            name, _, parts = self._open.pop()
            self.found[name] = "".join(parts).strip()
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for _, _, parts in self._open:
            parts.append(data)


def metrics(source: str) -> dict[str, str]:
    """data-metric name -> the text shown, from a page source."""
    parser = _Metrics()
    parser.feed(source)
    return parser.found
