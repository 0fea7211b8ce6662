"""The house rules that tools can check: ruff lint, ruff format, mypy --strict.

Run as tests so the README's one test command (and CI) enforces them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed tool invocations on our own tree
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "arguments",
    [("check", "."), ("format", "--check", ".")],
    ids=["ruff check", "ruff format"],
)
def test_ruff_is_clean(arguments: tuple[str, ...]) -> None:
    """Lint and formatting are clean, with every ignored rule explained in pyproject.toml.

    ruff runs from the interpreter running the tests, so a virtual environment that is not
    activated (the README's `.venv/bin/python -m pytest`) finds its own ruff, not the PATH's.
    """
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    result = run(sys.executable, "-m", "ruff", *arguments)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_ivr_and_storage() -> None:
    """Both packages type-check under mypy --strict (configured in pyproject.toml)."""
    result = run(sys.executable, "-m", "mypy")
    assert 0 == result.returncode, result.stdout + result.stderr
