"""`ivr-survey run` as a real child process, with its configuration file and its log.

The signal tests need the real process: signal handlers, the exit code and a
SIGKILL cannot be exercised inside the test's own event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa

from storage.database import create_engine

ROOT = Path(__file__).resolve().parents[2]

TomlValue = str | int | float


def render_toml(sections: Mapping[str, Mapping[str, TomlValue]]) -> str:
    lines: list[str] = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        for key, value in keys.items():
            rendered = f'"{value}"' if isinstance(value, str) else repr(value)
            lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


class CliProcess:
    """One `python -m ivr ...` child; its stderr (the log) is collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, cwd: Path, env: Mapping[str, str] | None = None) -> CliProcess:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("IVR_SURVEY_")}
        environment["PYTHONPATH"] = str(ROOT)
        environment.update(env or {})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr",
            *args,
            cwd=cwd,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        try:
            while line := await self.process.stderr.readline():
                self.lines.append(line.decode("utf-8", errors="replace").rstrip("\n"))
                self._new_line.set()
        finally:
            # Wake a waiter so that it sees the process has exited.
            self._new_line.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, fragment: str, timeout: float = 20.0) -> str:
        """The first log line containing `fragment`, waiting for it to be written."""

        async def find() -> str:
            while True:
                for line in self.lines:
                    if fragment in line:
                        return line
                if self._reader.done():
                    raise AssertionError(f"exited without logging {fragment!r}:\n{self.log}")
                self._new_line.clear()
                await self._new_line.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError as error:
            raise AssertionError(
                f"no log line with {fragment!r} in {timeout}s:\n{self.log}"
            ) from error

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    async def exit_code(self, timeout: float = 30.0) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code

    async def stdout(self) -> str:
        assert self.process.stdout is not None
        return (await self.process.stdout.read()).decode("utf-8", errors="replace")

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self._reader


async def count_rows(database_url: str, table: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608 - the table name is the test's own constant
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def wait_for_rows(database_url: str, table: str, count: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await count_rows(database_url, table) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} rows in {table} after {timeout}s")
        await asyncio.sleep(0.05)
