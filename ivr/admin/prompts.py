"""The survey's prompts: their texts (prompts.toml), how they are built, where Asterisk finds them.

Why synthesized, offline: an admin must hear the survey in every language on
day one, before anyone books a voice talent, and without sending the texts to
a cloud service. espeak-ng and sox are small Debian packages that do this on
the machine itself. The result is in Asterisk's own layout, so a studio
recording later simply replaces a file of the same name.

Why 8 kHz mono 16-bit WAV by default: it is Asterisk's `wav` format, which it
reads for any telephone codec with no quality loss beyond the call's own;
`.ulaw` and `.gsm` can be added so that busy systems need no transcoding.

How Asterisk finds a prompt (main/file.c `fileexists_core`): for a channel
language `pt_BR` it tries `sounds/pt_BR/<name>`, then `sounds/pt/<name>`, then
`sounds/<name>`, then `sounds/en/<name>` (the default language), in any format
it has a module for. `find_prompt` reproduces that so `ivr-survey check` can
say what a caller would actually hear.

A rebuild never overwrites a file it did not write: every file it writes is
recorded with its SHA-256 in `<out>/.ivr-survey-prompts.json`, so a file that
is not there (or differs) is someone's recording and is kept.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TextIO

CATALOG_RESOURCE = "prompts.toml"
MANIFEST_NAME = ".ivr-survey-prompts.json"
DEFAULT_LANGUAGE = "en"
"""Asterisk's last fallback language (asterisk.conf `defaultlanguage` may change it)."""

FORMATS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "wav": ("-b", "16", "-e", "signed-integer"),
        "ulaw": ("-t", "ul"),
        "gsm": ("-t", "gsm"),
    }
)
"""Formats `build_prompts` writes, with the sox output options for each.

`ulaw` is headerless mu-law and `gsm` raw GSM 06.10, as Asterisk's format_pcm
and format_gsm read them. `wav` is written first; the others are made from it.
"""

SOX_FORMAT_NAMES: Mapping[str, str] = MappingProxyType({"wav": "wav", "ulaw": "ul", "gsm": "gsm"})

ASTERISK_EXTENSIONS = (
    "wav",
    "wav16",
    "WAV",
    "wav49",
    "gsm",
    "ulaw",
    "ul",
    "pcm",
    "mu",
    "ulw",
    "alaw",
    "al",
    "alw",
    "g722",
    "g729",
    "g723",
    "g726-16",
    "g726-24",
    "g726-32",
    "g726-40",
    "sln",
    "raw",
    "slin",
    "sln16",
    "sln32",
    "sln48",
    "ilbc",
    "siren7",
    "siren14",
    "ogg",
    "opus",
    "vox",
)
"""File extensions Asterisk's format modules read, so any of them counts as present."""

SAMPLE_RATE = 8000
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z0-9]+)*$")
_TRIM_AND_LEVEL = (
    # Trim espeak's leading/trailing silence (dead air on a phone line), keep a
    # breath of 0.1 s either side, and normalize to -3 dBFS so mu-law and GSM
    # do not clip.
    "silence",
    "1",
    "0.02",
    "0.5%",
    "reverse",
    "silence",
    "1",
    "0.02",
    "0.5%",
    "reverse",
    "pad",
    "0.1",
    "0.1",
    "norm",
    "-3",
)


class CatalogError(Exception):
    """prompts.toml is not usable; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    name: str
    espeak_voice: str
    words_per_minute: int


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    """The sound file name Asterisk is asked for, without extension: `ivr-survey/intro`."""
    used_by: str
    """`survey` (played by the service) or `dialplan` (by our dialplan files)."""
    texts: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Catalog:
    languages: Mapping[str, Language]
    prompts: tuple[Prompt, ...]

    def prompt(self, name: str) -> Prompt | None:
        return next((p for p in self.prompts if p.name == name), None)

    def used_by(self, user: str) -> tuple[Prompt, ...]:
        return tuple(p for p in self.prompts if p.used_by == user)


def load_catalog(text: str | None = None) -> Catalog:
    """The prompt catalog shipped in the package (or parsed from `text`), validated whole."""
    if text is None:
        text = resources.files("ivr.admin").joinpath(CATALOG_RESOURCE).read_text(encoding="utf-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError([f"{CATALOG_RESOURCE}: not valid TOML: {error}"]) from None
    problems: list[str] = []
    languages = _languages(document.get("languages"), problems)
    prompts = _prompts(document.get("prompts"), languages, problems)
    if problems:
        raise CatalogError(problems)
    return Catalog(languages, prompts)


def _languages(raw: object, problems: list[str]) -> dict[str, Language]:
    if not isinstance(raw, dict) or not raw:
        problems.append("[languages] must list at least one language")
        return {}
    languages: dict[str, Language] = {}
    for code, spec in raw.items():
        if not _LANGUAGE_CODE.match(code) or not isinstance(spec, dict):
            problems.append(f"[languages.{code}]: not a language code with a table")
            continue
        voice, name, speed = (
            spec.get("espeak_voice"),
            spec.get("name"),
            spec.get("words_per_minute"),
        )
        if not isinstance(voice, str) or not isinstance(name, str) or not isinstance(speed, int):
            problems.append(
                f"[languages.{code}]: needs name, espeak_voice (text), words_per_minute (number)"
            )
            continue
        languages[code] = Language(code, name, voice, speed)
    return languages


def _prompts(
    raw: object, languages: Mapping[str, Language], problems: list[str]
) -> tuple[Prompt, ...]:
    if not isinstance(raw, dict) or not raw:
        problems.append("[prompts] must list at least one prompt")
        return ()
    prompts: list[Prompt] = []
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            problems.append(f'[prompts."{name}"] must be a table')
            continue
        used_by = spec.get("used_by")
        if used_by not in ("survey", "dialplan"):
            problems.append(f'[prompts."{name}"] used_by must be "survey" or "dialplan"')
        texts = {k: v for k, v in spec.items() if k != "used_by"}
        for code in languages:
            text = texts.get(code)
            if not isinstance(text, str) or not text.strip():
                problems.append(f'[prompts."{name}"] has no {code} text')
        for code in texts:
            if code not in languages:
                problems.append(f'[prompts."{name}"] {code}: not a language in [languages]')
        prompts.append(Prompt(name, str(used_by), {k: str(v) for k, v in texts.items()}))
    return tuple(prompts)


def parse_list(text: str) -> tuple[str, ...]:
    """`en, ru,fa` -> ("en", "ru", "fa"): the comma lists of the command line and config."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


# --- where Asterisk finds a prompt -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """The file Asterisk would play for one prompt and language, if any."""

    name: str
    language: str
    path: Path | None
    fallback: bool
    """True when the file is not in the language's own folder (Asterisk falls back)."""


def language_chain(language: str) -> tuple[str | None, ...]:
    """The folders Asterisk tries, in order: `pt_BR`, `pt`, none, then `en`."""
    chain: list[str | None] = []
    code = language
    while code:
        chain.append(code)
        if "_" not in code:
            break
        code = code.rsplit("_", 1)[0]
    chain.append(None)
    if DEFAULT_LANGUAGE not in chain:
        chain.append(DEFAULT_LANGUAGE)
    return tuple(chain)


def find_prompt(sounds_dir: Path, language: str, name: str) -> Found:
    for index, folder in enumerate(language_chain(language)):
        base = sounds_dir / folder / name if folder else sounds_dir / name
        for extension in ASTERISK_EXTENSIONS:
            candidate = base.with_name(f"{base.name}.{extension}")
            if candidate.is_file():
                return Found(name, language, candidate, fallback=index > 0)
    return Found(name, language, None, fallback=False)


def wav_problem(path: Path) -> str | None:
    """Why Asterisk's `wav` format would refuse this file (format_wav.c), or None.

    A studio recording is usually 44.1 or 48 kHz stereo; Asterisk then logs an
    error and the caller hears nothing, exactly as if the file were missing.
    """
    if path.suffix != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as audio:
            rate, channels, width = audio.getframerate(), audio.getnchannels(), audio.getsampwidth()
    except (wave.Error, EOFError, OSError) as error:
        return f"not a PCM WAV file ({error})"
    if (rate, channels, width) != (SAMPLE_RATE, 1, 2):
        return (
            f"{rate} Hz, {channels} channel(s), {width * 8}-bit: Asterisk's .wav must be "
            f"8000 Hz mono 16-bit (convert: sox IN -r 8000 -c 1 -b 16 {path.name})"
        )
    return None


# --- building ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tools:
    espeak_ng: str
    sox: str
    sox_formats: frozenset[str]


def find_tools() -> Tools | str:
    """espeak-ng and sox, or one line saying what is missing and how to install it."""
    espeak_ng, sox = shutil.which("espeak-ng"), shutil.which("sox")
    missing = [name for name, path in (("espeak-ng", espeak_ng), ("sox", sox)) if path is None]
    if espeak_ng is None or sox is None:
        return (
            f"{' and '.join(missing)} not found: prompts are synthesized with espeak-ng and sox "
            "(Debian/Ubuntu: apt-get install espeak-ng sox libsox-fmt-base)"
        )
    result = subprocess.run(  # noqa: S603 - a located binary, fixed arguments
        [sox, "-h"], capture_output=True, text=True, check=False
    )
    listed = re.search(r"AUDIO FILE FORMATS:(.*)", result.stdout)
    formats = frozenset(listed.group(1).split()) if listed else frozenset()
    return Tools(espeak_ng, sox, formats)


def _chosen(
    catalog: Catalog, languages: Sequence[str] | None, formats: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]] | str:
    """The languages and formats asked for (wav first: the others are converted
    from it), or what is wrong with the request."""
    chosen = tuple(languages) if languages else tuple(catalog.languages)
    unknown = [code for code in chosen if code not in catalog.languages]
    if unknown:
        known = ", ".join(catalog.languages)
        return f"unknown language {', '.join(unknown)} (known: {known})"
    wanted = tuple(dict.fromkeys(formats)) or ("wav",)
    bad = [f for f in wanted if f not in FORMATS]
    if bad:
        return f"unknown format {', '.join(bad)} (known: wav, ulaw, gsm)"
    return chosen, ("wav", *(f for f in wanted if f != "wav"))


def build_prompts(
    languages: Sequence[str] | None,
    out_dir: Path,
    formats: Sequence[str] = ("wav",),
    *,
    force: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    catalog: Catalog | None = None,
    tools: Tools | None = None,
) -> int:
    """Synthesize every prompt into `out_dir/<language>/<name>.<format>`; 0 on success.

    One progress line per file on `out`; one error line on `err` for anything
    that stops the build (unknown language or format: 2; missing espeak-ng or
    sox, a failing synthesis or an unwritable folder: 1).
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        catalog = catalog if catalog is not None else load_catalog()
    except CatalogError as error:
        for problem in error.problems:
            print(f"ivr-survey: {problem}", file=err)
        return 1
    choice = _chosen(catalog, languages, formats)
    if isinstance(choice, str):
        print(f"ivr-survey: {choice}", file=err)
        return 2
    chosen, wanted = choice
    found = tools if tools is not None else find_tools()
    if isinstance(found, str):
        print(f"ivr-survey: {found}", file=err)
        return 1
    unsupported = [f for f in wanted if SOX_FORMAT_NAMES[f] not in found.sox_formats]
    if unsupported:
        print(
            f"ivr-survey: this sox cannot write {', '.join(unsupported)} "
            "(Debian/Ubuntu: apt-get install libsox-fmt-base)",
            file=err,
        )
        return 1
    builder = _Build(
        catalog=catalog, out_dir=out_dir, formats=wanted, force=force, tools=found, out=out
    )
    try:
        builder.run(chosen)
    except _BuildFailed as error:
        print(f"ivr-survey: {error}", file=err)
        return 1
    except OSError as error:
        print(f"ivr-survey: cannot write prompts in {out_dir}: {error}", file=err)
        return 1
    print(builder.summary(chosen), file=out)
    return 0


class _BuildFailed(Exception):
    """A tool failed; the message names the file and the tool's own reason."""


class _Build:
    """One run of `build_prompts`: the manifest, the counters, the progress lines."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        out_dir: Path,
        formats: tuple[str, ...],
        force: bool,
        tools: Tools,
        out: TextIO,
    ) -> None:
        self._catalog = catalog
        self._out_dir = out_dir
        self._formats = formats
        self._force = force
        self._tools = tools
        self._out = out
        self._manifest_path = out_dir / MANIFEST_NAME
        self._manifest: dict[str, str] = {}
        self.written = 0
        self.kept = 0

    def run(self, languages: Sequence[str]) -> None:
        self._out_dir.mkdir(parents=True, exist_ok=True)
        self._manifest = _read_manifest(self._manifest_path)
        total = len(languages) * len(self._catalog.prompts) * len(self._formats)
        done = 0
        for code in languages:
            language = self._catalog.languages[code]
            for prompt in self._catalog.prompts:
                paths = [self._path(code, prompt.name, f) for f in self._formats]
                theirs = [p for p in paths if not self._ours(p)]
                if theirs and not self._force:
                    done += len(paths)
                    self.kept += len(paths)
                    self._line(done, total, theirs[0], "kept: not written by ivr-survey")
                    continue
                for path, seconds in self._synthesize(language, prompt, paths):
                    done += 1
                    self.written += 1
                    self._line(done, total, path, f"{seconds:4.1f} s")
                _write_manifest(self._manifest_path, self._manifest)

    def summary(self, languages: Sequence[str]) -> str:
        kept = f", kept {self.kept} existing recording(s)" if self.kept else ""
        return (
            f"prompts: wrote {self.written} file(s) for {', '.join(languages)} "
            f"in {self._out_dir}{kept}. Asterisk reads them from <sounds>/<language>/"
            f"ivr-survey/: copy or mount each {self._out_dir}/<language>/ivr-survey there."
        )

    def _path(self, code: str, name: str, fmt: str) -> Path:
        return self._out_dir / code / f"{name}.{fmt}"

    def _key(self, path: Path) -> str:
        return path.relative_to(self._out_dir).as_posix()

    def _ours(self, path: Path) -> bool:
        if not path.exists():
            return True
        return self._manifest.get(self._key(path)) == _sha256(path)

    def _line(self, done: int, total: int, path: Path, note: str) -> None:
        width = len(str(total))
        print(f"[{done:>{width}}/{total}] {self._key(path)}  {note}", file=self._out, flush=True)

    def _synthesize(
        self, language: Language, prompt: Prompt, paths: list[Path]
    ) -> list[tuple[Path, float]]:
        target_dir = paths[0].parent
        target_dir.mkdir(parents=True, exist_ok=True)
        stem = f".tmp-{os.getpid()}-{paths[0].stem}"
        raw = target_dir / f"{stem}.espeak.wav"
        temporary = [target_dir / f"{stem}.{p.suffix[1:]}" for p in paths]
        where = f"{language.code}/{prompt.name}"
        try:
            self._run(
                [
                    self._tools.espeak_ng,
                    "-v",
                    language.espeak_voice,
                    "-s",
                    str(language.words_per_minute),
                    "-b",
                    "1",
                    "-w",
                    str(raw),
                    "--stdin",
                ],
                where,
                stdin=prompt.texts[language.code],
            )
            wav = temporary[0]
            self._run(
                [
                    self._tools.sox,
                    str(raw),
                    "-r",
                    str(SAMPLE_RATE),
                    "-c",
                    "1",
                    *FORMATS["wav"],
                    str(wav),
                    *_TRIM_AND_LEVEL,
                ],
                where,
            )
            rate = ("-r", str(SAMPLE_RATE), "-c", "1")
            for fmt, path in zip(self._formats[1:], temporary[1:], strict=True):
                self._run([self._tools.sox, str(wav), *rate, *FORMATS[fmt], str(path)], where)
            seconds = _duration(wav)
            results = []
            for source, final in zip(temporary, paths, strict=True):
                os.replace(source, final)
                self._manifest[self._key(final)] = _sha256(final)
                results.append((final, seconds))
            return results
        finally:
            for leftover in (raw, *temporary):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    def _run(self, command: list[str], where: str, stdin: str | None = None) -> None:
        result = subprocess.run(  # noqa: S603 - located binaries, arguments we built
            command, input=stdin, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            reason = (result.stderr or result.stdout).strip().splitlines()
            tool = Path(command[0]).name
            detail = reason[0] if reason else f"exit status {result.returncode}"
            raise _BuildFailed(f"{tool} failed for {where}: {detail}")


def _duration(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _write_manifest(path: Path, files: Mapping[str, str]) -> None:
    """Written after every prompt, atomically, so an interrupted build still knows its files."""
    temporary = path.with_name(f"{path.name}.tmp")
    document = {
        "about": "files written by `ivr-survey prompts build`, with their SHA-256; "
        "a file missing here or different is a recording and is never overwritten",
        "files": dict(sorted(files.items())),
    }
    temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def prompt_checker(sounds_dir: Path) -> Callable[[str, str], bool]:
    """(language, name) -> whether `sounds_dir/<language>/<name>` exists in any format.

    Only that language's own folder counts: the survey uses it to play a prompt
    missing in the caller's language from the default language's folder
    instead. Answers are cached for the life of the process (a few stat calls
    per prompt and language, not per call); restart to pick up new files.
    """

    @functools.lru_cache(maxsize=4096)
    def exists(language: str, name: str) -> bool:
        base = sounds_dir / language / name
        return any(
            base.with_name(f"{base.name}.{extension}").is_file()
            for extension in ASTERISK_EXTENSIONS
        )

    return exists
