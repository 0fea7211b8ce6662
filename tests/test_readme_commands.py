"""The README's two set-up commands are the ones a stranger can paste, and the ones CI runs.

On Debian 12/13 and Ubuntu 24.04 `pip install` into the system Python is refused (PEP 668), so each
command makes its own virtual environment first; `.ci/run` must run the test command verbatim, or
CI would prove a command nobody reads.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

DEMO_COMMAND = (
    "python3 -m venv .venv && .venv/bin/python -m pip install -q -e . && .venv/bin/ivr-survey demo"
)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/python -m pip install -q -e ".[test]" '
    "&& .venv/bin/python -m pytest"
)


def shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)]


def test_readme_shows_the_demo_and_the_test_command_as_blocks_of_their_own() -> None:
    """Each command stands alone in a shell block, so copying the block copies exactly it."""
    blocks = shell_blocks(README)

    assert [True, True] == [DEMO_COMMAND in blocks, TEST_COMMAND in blocks]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """The last command of `.ci/run` is the README's test command, character for character."""
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert TEST_COMMAND == commands[-1]


def test_no_readme_command_installs_into_the_system_python() -> None:
    """A `python3 -m pip install` outside a virtual environment fails on a PEP 668 system."""
    assert [] == re.findall(r"python3 -m pip install", README)


def test_readme_names_the_python_version_the_package_requires() -> None:
    """The README's "Python 3.11 or newer" is what pyproject.toml's requires-python says."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert ">=3.11" == project["requires-python"]
    assert "Python 3.11 or newer" in README
