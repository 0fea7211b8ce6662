"""Prompts in five languages, built for real with espeak-ng and sox, found as Asterisk does."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tomllib
import wave
from dataclasses import fields
from pathlib import Path

import pytest

from ivr.admin.prompts import (
    MANIFEST_NAME,
    CatalogError,
    build_prompts,
    find_prompt,
    language_chain,
    load_catalog,
    parse_list,
    wav_problem,
)
from ivr.config.settings import SurveyConfig

REPO = Path(__file__).resolve().parents[2]
LANGUAGES = ("en", "ru", "fa", "eu", "es")
FORMATS = ("wav", "ulaw", "gsm")
GSM_FRAME_SAMPLES, GSM_FRAME_BYTES = 160, 33
SOXI = shutil.which("soxi") or "soxi"
MISSING_TOOLS = [tool for tool in ("espeak-ng", "sox", "soxi") if shutil.which(tool) is None]
needs_tools = pytest.mark.skipif(
    bool(MISSING_TOOLS),
    reason=f"{', '.join(MISSING_TOOLS)} not installed (CI installs espeak-ng and sox in .ci/run)",
)


def write_wav(path: Path, *, rate: int = 8000, channels: int = 1, seconds: float = 0.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(channels)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * channels * int(rate * seconds))


def test_catalog_has_every_prompt_in_every_language() -> None:
    """Five languages, and every prompt has a non-empty text in each."""
    catalog = load_catalog()
    assert LANGUAGES == tuple(catalog.languages)
    assert all(set(p.texts) == set(LANGUAGES) for p in catalog.prompts)


def test_catalog_covers_the_prompts_the_service_plays_by_default() -> None:
    """Every `[survey] prompt_*` default is a survey prompt of the catalog, and nothing else is.

    The language menu's default is a stem: one entry per language position, 1 to 5
    (the five languages the catalog ships).
    """
    survey = SurveyConfig()
    defaults = {
        getattr(survey, f.name)
        for f in fields(SurveyConfig)
        if f.name.startswith("prompt_") and f.name != "prompt_language_menu"
    }
    defaults |= {f"{survey.prompt_language_menu}-{n}" for n in range(1, 6)}
    assert defaults == {p.name for p in load_catalog().used_by("survey")}


@pytest.mark.parametrize(
    ("language", "ten", "star", "barge_in"),
    [
        ("en", "press one, then zero", "press star", "at any time, even while we are speaking"),
        (
            "ru",
            "единица, а затем ноль",  # noqa: RUF001 - Russian on purpose
            "звёздочку",
            "в любой момент, даже пока мы говорим",
        ),
        ("fa", "یک و بعد صفر", "ستاره", "حتی در حین پخش پیام"),
        ("eu", "sakatu bat eta gero zero", "izartxoa", "hitz egiten dugun bitartean ere"),
        ("es", "marque uno y luego cero", "asterisco", "incluso mientras hablamos"),
    ],
)
def test_intro_explains_the_scale_ten_as_one_zero_star_and_answering_early(
    language: str, ten: str, star: str, barge_in: str
) -> None:
    """The intro says 0 to 10, that 10 is 1 then 0, that * repeats, and that keys
    work while it plays (a key during the intro answers the first question)."""
    intro = load_catalog().prompt("ivr-survey/intro")
    assert intro is not None
    text = intro.texts[language].lower()
    assert (True, True, True) == (ten in text, star in text, barge_in in text)


def test_a_broken_catalog_is_reported_whole() -> None:
    """A missing translation and an unknown language are both reported, one line each."""
    text = (
        '[languages.en]\nname = "English"\nespeak_voice = "en"\nwords_per_minute = 160\n'
        '[prompts."x/y"]\nused_by = "survey"\nde = "Hallo"\n'
    )
    with pytest.raises(CatalogError) as raised:
        load_catalog(text)
    expected = [
        '[prompts."x/y"] has no en text',
        '[prompts."x/y"] de: not a language in [languages]',
    ]
    assert expected == raised.value.problems


def test_comma_lists_are_trimmed_and_deduplicated() -> None:
    """`--lang en, ru,,en` means en and ru."""
    assert ("en", "ru") == parse_list("en, ru,,en")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """All five languages in all three formats, synthesized once for this module."""
    if MISSING_TOOLS:
        pytest.skip(f"{', '.join(MISSING_TOOLS)} not installed (CI installs them in .ci/run)")
    out_dir = tmp_path_factory.mktemp("prompts")
    progress = io.StringIO()
    assert 0 == build_prompts(LANGUAGES, out_dir, FORMATS, out=progress)
    return out_dir, progress.getvalue()


def soxi(path: Path) -> dict[str, str]:
    flags = {"rate": "-r", "channels": "-c", "bits": "-b", "encoding": "-e"}
    return {
        name: subprocess.run(  # noqa: S603 - soxi on our own file
            [SOXI, flag, str(path)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for name, flag in flags.items()
    }


@needs_tools
def test_every_wav_is_8khz_mono_16bit_signed_pcm(built: tuple[Path, str]) -> None:
    """soxi reports each .wav as Asterisk's wav format: 8000 Hz, 1 channel, 16-bit signed PCM."""
    out_dir, _ = built
    wavs = sorted(out_dir.glob("*/ivr-survey/*.wav"))
    assert len(LANGUAGES) * len(load_catalog().prompts) == len(wavs)
    expected = {"rate": "8000", "channels": "1", "bits": "16", "encoding": "Signed Integer PCM"}
    assert [] == [(w.name, soxi(w)) for w in wavs if soxi(w) != expected]


@needs_tools
def test_ulaw_and_gsm_hold_the_same_audio_as_the_wav(built: tuple[Path, str]) -> None:
    """.ulaw has one byte per 8 kHz sample; .gsm 33 bytes per 160 samples (as Asterisk reads)."""
    out_dir, _ = built
    for wav_path in sorted(out_dir.glob("*/ivr-survey/*.wav")):
        with wave.open(str(wav_path), "rb") as audio:
            samples = audio.getnframes()
        ulaw_size = wav_path.with_suffix(".ulaw").stat().st_size
        gsm_size = wav_path.with_suffix(".gsm").stat().st_size
        assert samples == ulaw_size, wav_path
        assert math.ceil(samples / GSM_FRAME_SAMPLES) * GSM_FRAME_BYTES == gsm_size, wav_path


@needs_tools
def test_one_progress_line_per_file_then_a_summary(built: tuple[Path, str]) -> None:
    """The build prints `[n/total] <lang>/<name>.<fmt>` for each file it writes."""
    _, progress = built
    lines = progress.splitlines()
    total = len(LANGUAGES) * len(load_catalog().prompts) * len(FORMATS)
    assert total + 1 == len(lines)
    assert lines[0].startswith(f"[  1/{total}] en/ivr-survey/")
    assert lines[-1].startswith(f"prompts: wrote {total} file(s)")


@needs_tools
def test_goodbye_for_an_unreachable_service_ends_within_a_second(built: tuple[Path, str]) -> None:
    """The goodbye played when the service is down lasts at most 1 s in every language."""
    out_dir, _ = built
    for language in LANGUAGES:
        with wave.open(str(out_dir / language / "ivr-survey" / "goodbye.wav"), "rb") as audio:
            assert audio.getnframes() / audio.getframerate() <= 1.0, language


@needs_tools
def test_a_rebuild_keeps_a_studio_recording_unless_forced(tmp_path: Path) -> None:
    """A file the builder did not write is kept (with a note); --force replaces it."""
    assert 0 == build_prompts(("en",), tmp_path, ("wav",), out=io.StringIO())
    recording = tmp_path / "en" / "ivr-survey" / "thanks.wav"
    write_wav(recording, seconds=1.0)
    studio = recording.read_bytes()
    progress = io.StringIO()
    assert 0 == build_prompts(("en",), tmp_path, ("wav",), out=progress)
    assert studio == recording.read_bytes()
    assert "en/ivr-survey/thanks.wav  kept: not written by ivr-survey" in progress.getvalue()
    assert 0 == build_prompts(("en",), tmp_path, ("wav",), force=True, out=io.StringIO())
    assert studio != recording.read_bytes()
    assert (tmp_path / MANIFEST_NAME).is_file()


def test_missing_espeak_or_sox_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither tool on PATH: exit 1 and one line naming both and the packages to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    err = io.StringIO()
    assert 1 == build_prompts(("en",), tmp_path / "out", out=io.StringIO(), err=err)
    expected = (
        "ivr-survey: espeak-ng and sox not found: prompts are synthesized with espeak-ng and "
        "sox (Debian/Ubuntu: apt-get install espeak-ng sox libsox-fmt-base)\n"
    )
    assert expected == err.getvalue()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("languages", "formats", "message"),
    [
        (("de",), ("wav",), "ivr-survey: unknown language de (known: en, ru, fa, eu, es)\n"),
        (("en",), ("mp3",), "ivr-survey: unknown format mp3 (known: wav, ulaw, gsm)\n"),
    ],
)
def test_unknown_language_or_format_is_a_usage_error(
    tmp_path: Path, languages: tuple[str, ...], formats: tuple[str, ...], message: str
) -> None:
    """Exit status 2 and one line listing what is known."""
    err = io.StringIO()
    assert 2 == build_prompts(languages, tmp_path, formats, out=io.StringIO(), err=err)
    assert message == err.getvalue()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fa", ("fa", None, "en")),
        ("pt_BR", ("pt_BR", "pt", None, "en")),
        ("en", ("en", None)),
    ],
)
def test_language_fallback_order_is_asterisks(
    language: str, expected: tuple[str | None, ...]
) -> None:
    """The folders main/file.c tries: the language, without its region, none, then en."""
    assert expected == language_chain(language)


def test_find_prompt_reports_a_fallback_to_another_language(tmp_path: Path) -> None:
    """A Persian caller with only the English file hears English: found, but as a fallback."""
    write_wav(tmp_path / "en" / "ivr-survey" / "intro.wav")
    (tmp_path / "fa" / "ivr-survey").mkdir(parents=True)
    (tmp_path / "fa" / "ivr-survey" / "thanks.gsm").write_bytes(b"\x00" * 33)
    english = find_prompt(tmp_path, "fa", "ivr-survey/intro")
    persian = find_prompt(tmp_path, "fa", "ivr-survey/thanks")
    missing = find_prompt(tmp_path, "fa", "ivr-survey/invalid")
    assert (tmp_path / "en" / "ivr-survey" / "intro.wav", True) == (english.path, english.fallback)
    assert (tmp_path / "fa" / "ivr-survey" / "thanks.gsm", False) == (
        persian.path,
        persian.fallback,
    )
    assert missing.path is None


def test_a_studio_wav_in_the_wrong_format_is_explained(tmp_path: Path) -> None:
    """A 44.1 kHz stereo recording is named as such, with the sox command that fixes it."""
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    write_wav(good)
    write_wav(bad, rate=44100, channels=2)
    assert wav_problem(good) is None
    expected = (
        "44100 Hz, 2 channel(s), 16-bit: Asterisk's .wav must be 8000 Hz mono 16-bit "
        "(convert: sox IN -r 8000 -c 1 -b 16 bad.wav)"
    )
    assert expected == wav_problem(bad)


def test_prompt_catalog_is_shipped_in_the_package() -> None:
    """ivr/admin/prompts.toml is package data of `ivr`, so wheels and the Docker image carry it."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"].get("package-data", {})
    assert "admin/prompts.toml" in package_data.get("ivr", [])
