"""The CLI as a user runs it: `python -m ivr` in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
"""Left out, so the CLI speaks English unless a test sets one: `report` follows the locale."""


def ivr_survey(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("IVR_SURVEY_") and key not in LOCALE_VARIABLES
    }
    environment.update(env or {})
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "ivr", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
