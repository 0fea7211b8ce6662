"""The message catalogs: complete, up to date with the code, and what the service reads."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from ivr.adapters.i18n import CATALOGS, DOMAIN, LANGUAGES, Reader

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = CATALOGS / f"{DOMAIN}.pot"
TRANSLATED = [language for language in LANGUAGES if language != "en"]
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def load(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def po(language: str) -> Path:
    return CATALOGS / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def messages(catalog: Catalog) -> dict[str, str]:
    """English -> translation, for the messages that have one."""
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_translates_every_english_message(language: str) -> None:
    """A message the English template has and a catalog lacks (or left fuzzy) fails here,
    so a new string in the code cannot ship half translated."""
    catalog = load(po(language))
    untranslated = [
        str(message.id) for message in load(TEMPLATE) if message.id and not catalog.get(message.id)
    ]
    untranslated += [str(m.id) for m in catalog if m.id and (not m.string or m.fuzzy)]

    assert [] == untranslated


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    wrong = [
        english
        for english, translated in messages(load(po(language))).items()
        if sorted(PLACEHOLDER.findall(english)) != sorted(PLACEHOLDER.findall(translated))
    ]

    assert [] == wrong


def test_the_english_template_holds_what_the_code_and_templates_mark() -> None:
    """`pybabel extract` run now finds exactly the template's messages: a string marked
    in the code but missing from the catalogs (or left there after removal) fails."""
    with (REPO / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]  # Babel's frontend is unannotated
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(REPO, method_map, options_map, keywords)
    }

    assert sorted(found) == sorted(str(m.id) for m in load(TEMPLATE) if m.id)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_service_reads_the_translations_the_catalogs_hold(language: str) -> None:
    """The compiled catalogs (built by `pip install`) match the .po files; if this
    fails after editing a .po file, run `pip install -e .` again to recompile."""
    reader = Reader.of(language)
    expected = messages(load(po(language)))

    assert expected == {english: reader.gettext(english) for english in expected}


def test_the_build_compiles_each_po_file_beside_it(tmp_path: Path) -> None:
    """The build backend is a file beside the project, not a package of it: loaded by path."""
    spec = importlib.util.spec_from_file_location(
        "backend", REPO / "build_backend" / "ivr_build_backend.py"
    )
    assert spec is not None
    assert spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    shutil.copytree(CATALOGS, tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))

    written = backend.compile_catalogs(tmp_path / "locale")

    expected = sorted(
        tmp_path / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.mo" for lang in TRANSLATED
    )
    assert expected == sorted(written)
