"""The house rules that tools can check: ruff, ruff format, mypy --strict, the layers.

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


def test_mypy_strict_is_clean_on_the_code_its_tests_and_benches() -> None:
    """ivr, storage, tests and bench type-check under mypy --strict (pyproject.toml)."""
    result = run(sys.executable, "-m", "mypy")
    assert 0 == result.returncode, result.stdout + result.stderr


def test_the_layer_contracts_hold() -> None:
    """import-linter checks the layers of docs/ARCHITECTURE.md (contracts in pyproject.toml)."""
    if importlib.util.find_spec("importlinter") is None:
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    result = run(str(Path(sys.executable).with_name("lint-imports")))
    assert 0 == result.returncode, result.stdout + result.stderr


def import_cycles(packages: tuple[str, ...] = ("ivr", "storage")) -> list[tuple[str, ...]]:
    """Each pair of modules that import each other, directly or through others.

    A module importing its own package (`from ivr.adapters.web import pages`
    inside ivr.adapters.web) is how Python names a sibling, not a cycle, so
    imports of a module's own ancestors are left out.
    """
    import grimp  # noqa: PLC0415 - import-linter's own graph library, only here

    graph = grimp.build_graph(*packages, include_external_packages=False)
    for module in list(graph.modules):
        for imported in list(graph.find_modules_directly_imported_by(module)):
            if module.startswith(imported + "."):
                graph.remove_import(importer=module, imported=imported)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None and module < imported:
                cycles.append((module, *chain))
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    """No import cycle in ivr and storage, type-only imports included."""
    assert [] == import_cycles()
