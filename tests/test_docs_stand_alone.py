"""The project's code and docs cite only what the repository holds.

Users and contributors never see the steering folders the captures came from, so every citation of
an Asterisk fact must resolve inside the repository: `docs/asterisk-facts.md` numbers the facts, and
the captures themselves ship in `ivr/sim/transcripts/`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "docs" / "asterisk-facts.md"
OUTSIDE = re.compile(r"asterisk-22-transcripts|\.\./shared|/work/shared")
CITATION = re.compile(r"\bfacts? (\d+)((?:(?:, | and |-|\u2013)\d+)*)")


def tracked_text_files() -> list[Path]:
    patterns = ["*.py", "*.md", "*.conf", "*.toml", "*.yaml", "*.txt", ".ci/run"]
    listing = subprocess.run(  # noqa: S603 - a fixed git command on our own tree
        ["git", "ls-files", *patterns],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        return sorted(p for p in ROOT.rglob("*.py") if ".venv" not in p.parts)
    return [ROOT / name for name in listing.stdout.splitlines() if (ROOT / name).is_file()]


def fact_numbers_defined() -> set[int]:
    return {int(n) for n in re.findall(r"^(\d+)\. ", FACTS.read_text(encoding="utf-8"), re.M)}


def cited_numbers(text: str) -> set[int]:
    numbers: set[int] = set()
    for match in CITATION.finditer(text):
        numbers.update(int(n) for n in re.findall(r"\d+", match.group(0)))
    return numbers


def test_nothing_cites_a_document_outside_the_repository() -> None:
    """No tracked file names the steering repository's capture folder or a path outside the tree."""
    this_file = Path(__file__).resolve()
    offenders = [
        str(path.relative_to(ROOT))
        for path in tracked_text_files()
        if path.resolve() != this_file and OUTSIDE.search(path.read_text(encoding="utf-8"))
    ]

    assert [] == offenders


def test_the_facts_document_numbers_facts_1_to_60() -> None:
    """Citations use stable numbers, so the document keeps every one of them
    (1 to 59 from the captures' notes, 60 read off the captures by this project)."""
    assert set(range(1, 61)) == fact_numbers_defined()


def test_every_cited_fact_exists_in_the_facts_document() -> None:
    """A "fact N" in code, tests or docs names a fact `docs/asterisk-facts.md` has."""
    defined = fact_numbers_defined()
    undefined = {
        str(path.relative_to(ROOT)): sorted(
            cited_numbers(path.read_text(encoding="utf-8")) - defined
        )
        for path in tracked_text_files()
        if path != FACTS
    }

    assert {} == {name: numbers for name, numbers in undefined.items() if numbers}
