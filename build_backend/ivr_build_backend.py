"""The build backend: setuptools, after compiling the message catalogs.

Translators edit `.po` files (ivr/adapters/locale/<lang>/LC_MESSAGES/); the
service reads compiled `.mo` files, which are not kept in git. Compiling here,
before setuptools collects the package data, means every wheel and every
editable install (`pip install -e .`) has catalogs that match the `.po` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import build_meta
from setuptools.build_meta import (
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

CATALOGS = Path(__file__).resolve().parents[1] / "ivr" / "adapters" / "locale"

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "compile_catalogs",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]


def compile_catalogs(root: Path = CATALOGS) -> list[Path]:
    """Every `.po` under `root` written as the `.mo` beside it; fuzzy entries left out."""
    written = []
    for source in sorted(root.glob("*/LC_MESSAGES/*.po")):
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=source.parts[-3])
        target = source.with_suffix(".mo")
        with target.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(target)
    return written


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    compile_catalogs()
    built: str = build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)
    return built


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    compile_catalogs()
    built: str = build_meta.build_editable(wheel_directory, config_settings, metadata_directory)
    return built


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    compile_catalogs()
    built: str = build_meta.build_sdist(sdist_directory, config_settings)
    return built
