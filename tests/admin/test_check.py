"""`ivr-survey check`: one line per finding, exit 1 on any FAIL, AMI against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import socket
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.admin.check import (
    check_agi_port,
    check_database,
    check_open_files,
    check_prompts,
    run_check,
    survey_prompt_names,
)
from ivr.admin.check_ami import AmiProbe, assess_ami, writable_classes
from ivr.admin.findings import Finding, Status
from ivr.admin.prompts import load_catalog
from ivr.config.pbx import PbxConfig
from ivr.config.queues import QueueSurvey
from ivr.config.settings import AgiConfig, Config, DatabaseConfig, SurveyConfig
from ivr.config.values import AmiConfig
from ivr.core.domain import AmiEvent
from ivr.sim import AmiAccount, CallPlan, SimulatedPbx
from storage.database import upgrade
from tests.helpers.asterisk_conf import event_filters, excluded_event_names, load_conf

REPO = Path(__file__).resolve().parents[2]
NEEDED = frozenset({"agent", "call", "system"})
WATCH = 0.6
GOOD_SECRET = "secret"


def shipped_filters() -> frozenset[str]:
    """The events dialplan/manager-ivr-survey.conf filters out, applied to the simulated account."""
    account = load_conf(REPO / "dialplan" / "manager-ivr-survey.conf").effective()[0]
    return excluded_event_names(event_filters(account))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def migrated_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database at the head revision (sync fixture: it runs its own event loop)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'ivr.db'}"
    asyncio.run(upgrade(url))
    return url


def config_for(pbx: SimulatedPbx, url: str, *, secret: str = GOOD_SECRET) -> Config:
    return Config(
        ami=AmiConfig(port=pbx.ami_port, username="ivr", secret=secret, name="sim"),
        agi=AgiConfig(port=0),
        database=DatabaseConfig(url=url),
    )


def without_port(line: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)


async def check_against_sim(
    url: str,
    *,
    read: frozenset[str] = NEEDED,
    write: frozenset[str] = frozenset(),
    secret: str = GOOD_SECRET,
    excluded: frozenset[str] = frozenset(),
    call: bool = False,
) -> tuple[int, list[str], SimulatedPbx]:
    """Run the whole check against a simulated Asterisk; optionally one queue call meanwhile.

    The call starts once the check has taken its first QueueStatus, as a call
    arriving during the watch would.
    """
    account = AmiAccount("ivr", GOOD_SECRET, read=read, write=write, excluded_events=excluded)
    pbx = SimulatedPbx(
        name="sim", accounts=(account,), login_failure_delay=0.0, agi_port=closed_port()
    )
    await pbx.start()
    out = io.StringIO()
    try:
        checking = asyncio.create_task(
            run_check(config_for(pbx, url, secret=secret), ami_watch=WATCH, out=out)
        )
        if call:
            for _ in range(500):
                if any(a.get("Action") == "QueueStatus" for a in pbx.actions_received):
                    break
                await asyncio.sleep(0.01)
            await pbx.place_call(CallPlan())
        code = await checking
    finally:
        await pbx.stop()
    return code, [without_port(line) for line in out.getvalue().splitlines()], pbx


def ami_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " AMI" in line[:12]]


async def test_good_account_during_a_queue_call_is_all_ok(migrated_url: str) -> None:
    """read = agent,call,system with the shipped filters: every AMI line OK, exit status 0."""
    code, lines, _ = await check_against_sim(migrated_url, excluded=shipped_filters(), call=True)
    expected = [
        "OK   AMI: logged in to 127.0.0.1:PORT as 'ivr' (AMI 11.0.0)",
        "OK   AMI read: class system (FullyBooted after login)",
        "OK   AMI read: class agent (seen: ",
        "OK   AMI read: class call (seen: ",
        "OK   AMI resync: CoreShowChannels not allowed (no write = reporting): after a "
        "reconnect, bridged calls are credited from setinterfacevar/setqueuevar variables",
    ]
    found = ami_lines(lines)
    assert len(expected) == len(found)
    assert all(line.startswith(prefix) for prefix, line in zip(expected, found, strict=True))
    assert 0 == code
    assert "check: ready, 0 warning(s)" == lines[-1]


async def test_account_without_agent_class_fails_when_a_queue_call_goes_by(
    migrated_url: str,
) -> None:
    """No agent event while queue counters changed: FAIL naming the class, exit status 1."""
    code, lines, _ = await check_against_sim(
        migrated_url, read=frozenset({"call", "system"}), call=True
    )
    expected = (
        "FAIL AMI read: no agent event although queue support changed during the check: "
        "add agent to the account's read = and make sure no eventfilter drops those events"
    )
    assert expected in lines
    assert 1 == code


async def test_account_without_system_class_fails_at_login(migrated_url: str) -> None:
    """No FullyBooted after login means no system class: FAIL, even with no call at all."""
    code, lines, _ = await check_against_sim(migrated_url, read=frozenset({"agent", "call"}))
    expected = (
        "FAIL AMI read: no FullyBooted after login: the account does not read class system "
        "(read = agent,call,system), so the service would not notice a restart"
    )
    assert expected in lines
    assert 1 == code


async def test_wrong_secret_is_one_fail_line_after_one_attempt(migrated_url: str) -> None:
    """A refused login is reported with what to check, and tried once (fail2ban counts)."""
    code, lines, pbx = await check_against_sim(migrated_url, secret="wrong")
    expected = [
        "FAIL AMI: login as 'ivr' at 127.0.0.1:PORT refused: Authentication failed "
        "(check the secret, and that this host is in the account's permit= lines)"
    ]
    assert expected == ami_lines(lines)
    assert [("ivr", False)] == [(user, ok) for user, ok, _ in pbx.login_attempts]
    assert 1 == code


async def test_idle_pbx_leaves_agent_and_call_unconfirmed(migrated_url: str) -> None:
    """With no call during the watch, agent and call cannot be proven: WARN, exit status 0."""
    code, lines, _ = await check_against_sim(migrated_url)
    expected = [
        f"WARN AMI read: class {name} not confirmed: no call during the {WATCH:g} s watch "
        "(run `ivr-survey check --ami-watch 60` while calls are in progress)"
        for name in ("agent", "call")
    ]
    assert expected == [line for line in lines if line.startswith("WARN")]
    assert 0 == code


async def test_read_all_warns_about_each_unneeded_class_and_missing_filters(
    migrated_url: str,
) -> None:
    """A read = all account works, with a WARN per extra class and one for the missing filters."""
    code, lines, _ = await check_against_sim(migrated_url, read=frozenset({"all"}), call=True)
    warned = [line.split("(seen")[0] for line in lines if line.startswith("WARN AMI read")]
    expected = [
        f"WARN AMI read: the account reads class {name}, which the service does not use "
        for name in ("cdr", "dialplan", "security")
    ]
    assert expected == warned
    assert any(line.startswith("WARN AMI filters: events the service ignores") for line in lines)
    assert 0 == code


async def test_write_reporting_allows_the_full_resync(migrated_url: str) -> None:
    """With write = reporting, CoreShowChannels is allowed and the check says what that gives."""
    _, lines, _ = await check_against_sim(migrated_url, write=frozenset({"reporting"}))
    expected = (
        "OK   AMI resync: CoreShowChannels allowed: after a reconnect, calls already "
        "bridged are found"
    )
    assert expected in lines


async def test_each_pbx_login_is_checked_and_named(migrated_url: str) -> None:
    """With [pbx.*] tables every PBX's AMI account is tried; each line names its PBX."""
    pbx = SimulatedPbx(
        name="sim", accounts=(AmiAccount("ivr", GOOD_SECRET),), login_failure_delay=0.0
    )
    await pbx.start()
    good = AmiConfig(port=pbx.ami_port, username="ivr", secret=GOOD_SECRET, name="east")
    config = Config(
        agi=AgiConfig(port=0),
        database=DatabaseConfig(url=migrated_url),
        pbxs=(
            PbxConfig("east", good),
            PbxConfig("west", dataclasses.replace(good, secret="wrong", name="west")),
        ),
    )
    out = io.StringIO()
    try:
        code = await run_check(config, ami_watch=WATCH, out=out)
    finally:
        await pbx.stop()
    lines = [without_port(line) for line in out.getvalue().splitlines()]
    logins = [line for line in lines if "logged in" in line or "refused" in line]

    assert 1 == code
    assert [
        "OK   AMI east: logged in to 127.0.0.1:PORT as 'ivr' (AMI 11.0.0)",
        "FAIL AMI west: login as 'ivr' at 127.0.0.1:PORT refused: Authentication failed "
        "(check the secret, and that this host is in the account's permit= lines)",
    ] == logins


async def test_unreachable_ami_is_one_fail_line(migrated_url: str) -> None:
    """Nothing listening on the AMI port: FAIL with where to look."""
    config = Config(
        ami=AmiConfig(port=closed_port(), secret="one-of-its-own"),
        database=DatabaseConfig(url=migrated_url),
    )
    out = io.StringIO()
    assert 1 == await run_check(config, ami_watch=WATCH, out=out)
    failing = [without_port(line) for line in out.getvalue().splitlines() if "AMI" in line]
    assert 1 == len(failing)
    assert failing[0].startswith("FAIL AMI: cannot connect to 127.0.0.1:PORT: ")


def ami_event(name: str, privilege: str) -> AmiEvent:
    return AmiEvent(
        pbx="p", name=name, headers={"Event": name, "Privilege": privilege}, received_at=0.0
    )


def test_queue_events_without_channel_events_prove_call_is_missing() -> None:
    """AgentConnect always comes with BridgeEnter: seeing one without the other is a FAIL."""
    probe = AmiProbe(
        events=(ami_event("FullyBooted", "system,all"), ami_event("AgentConnect", "agent,all"))
    )
    found = assess_ami(probe, AmiConfig(), watch=1.0)
    failing = [f.message for f in found if f.status is Status.FAIL]
    expected = [
        "no call event although queue events arrived without their channel events: add call "
        "to the account's read = and make sure no eventfilter drops those events"
    ]
    assert expected == failing


def test_list_commands_reveals_write_classes_the_service_does_not_need() -> None:
    """Actions needing one class prove the account has it; reporting alone is fine."""
    commands = {
        "Ping": "Keepalive command. (Priv: <none>)",
        "Originate": "Originate a call. (Priv: originate,all)",
        "Command": "Execute Asterisk CLI Command. (Priv: command,all)",
        "CoreShowChannels": "List currently active channels. (Priv: system,reporting,all)",
    }
    assert frozenset({"originate", "command"}) == writable_classes(commands)
    probe = AmiProbe(events=(ami_event("FullyBooted", "system,all"),), list_commands=commands)
    warned = [
        f.message for f in assess_ami(probe, AmiConfig(), watch=1.0) if f.topic == "AMI write"
    ]
    expected = [
        "the account may send actions of class command, originate; the service sends none: "
        "set write = (empty) or write = reporting"
    ]
    assert expected == warned


async def test_database_migrated_is_ok(migrated_url: str) -> None:
    """A database at the head revision is reported reachable."""
    finding = await check_database(migrated_url)
    assert Status.OK is finding.status


async def test_missing_sqlite_file_fails_without_creating_it(tmp_path: Path) -> None:
    """The check never leaves an empty database behind: it says to run db upgrade."""
    path = tmp_path / "absent.db"
    finding = await check_database(f"sqlite+aiosqlite:///{path}")
    assert (Status.FAIL, False) == (finding.status, path.exists())
    assert finding.message.endswith("the SQLite file does not exist: run `ivr-survey db upgrade`")


async def test_unmigrated_database_fails_with_the_command_to_run(tmp_path: Path) -> None:
    """An empty database file: FAIL with `ivr-survey db upgrade` in the message."""
    path = tmp_path / "empty.db"
    path.touch()
    finding = await check_database(f"sqlite+aiosqlite:///{path}")
    assert Status.FAIL is finding.status
    assert "ivr-survey db upgrade" in finding.message


async def test_unsupported_database_url_fails() -> None:
    """A driver the service does not have is one FAIL line, password hidden."""
    finding = await check_database("mysql://u:secretpw@db/ivr")
    assert Status.FAIL is finding.status
    assert "secretpw" not in finding.message


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


async def test_fastagi_port_in_use_fails(busy_port: int) -> None:
    """A port something else holds cannot be bound: FAIL, with the likely reason."""
    found = await check_agi_port(AgiConfig(port=busy_port), AmiConfig())
    assert [Status.FAIL] == [f.status for f in found]
    assert "if ivr-survey already runs on this host, that is why" in found[0].message


async def test_fastagi_on_loopback_with_a_remote_asterisk_warns() -> None:
    """Listening on 127.0.0.1 while Asterisk is elsewhere: Asterisk could never connect."""
    found = await check_agi_port(AgiConfig(port=0), AmiConfig(host="10.1.2.3"))
    assert [Status.OK, Status.WARN] == [f.status for f in found]


def write_wav(path: Path, rate: int = 8000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(channels)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * channels * 80)


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    """An Asterisk sounds folder with every prompt of the catalog in en and ru."""
    for language in ("en", "ru"):
        for prompt in load_catalog().prompts:
            write_wav(tmp_path / language / f"{prompt.name}.wav")
    return tmp_path


PROMPTS = survey_prompt_names(Config())


def test_prompt_names_come_from_the_survey_config() -> None:
    """The six `[survey] prompt_*` names the default survey plays, in order."""
    survey = SurveyConfig()
    expected = (
        survey.prompt_intro,
        survey.prompt_agent,
        survey.prompt_company,
        survey.prompt_invalid,
        survey.prompt_no_input,
        survey.prompt_thanks,
    )
    assert expected == PROMPTS


def test_prompt_names_include_what_a_queue_asks() -> None:
    """A queue's intro, questions, invalid-key and comment prompts and menu entries are checked."""
    config = Config(
        survey=SurveyConfig(languages="en,es"),
        queues={"sales": QueueSurvey(questions="csat", comment="all", language_mode="choose")},
    )
    expected = (
        "ivr-survey/intro-general",
        "ivr-survey/csat-question",
        "ivr-survey/invalid-key",
        "ivr-survey/comment",
        "ivr-survey/language-menu-1",
        "ivr-survey/language-menu-2",
    )
    assert expected == survey_prompt_names(config)[len(PROMPTS) :]


def test_all_prompts_present_is_one_ok_line(sounds: Path) -> None:
    """Nothing to say but OK, with the count and the languages."""
    expected = [Finding(Status.OK, "prompts", f"9 prompts present for en, ru in {sounds}")]
    assert expected == check_prompts(sounds, ("en", "ru"), PROMPTS)


def test_missing_survey_prompt_fails_and_missing_dialplan_prompt_warns(sounds: Path) -> None:
    """A prompt the survey plays is required; one only a recipe plays is a warning."""
    (sounds / "ru" / "ivr-survey" / "thanks.wav").unlink()
    (sounds / "en" / "ivr-survey" / "thanks.wav").unlink()
    (sounds / "en" / "ivr-survey" / "goodbye.wav").unlink()
    found = [
        (f.status, f.topic, f.message.split(":")[0])
        for f in check_prompts(sounds, ("en",), PROMPTS)
    ]
    expected = [
        (
            Status.FAIL,
            "prompts en",
            "ivr-survey/thanks not found in any format under " + str(sounds / "en"),
        ),
        (
            Status.WARN,
            "prompts en",
            "ivr-survey/goodbye not found in any format under " + str(sounds / "en"),
        ),
    ]
    assert expected == found


def test_prompt_found_only_in_english_warns_for_another_language(sounds: Path) -> None:
    """A Russian caller would hear the English file: WARN naming the file played."""
    (sounds / "ru" / "ivr-survey" / "intro.wav").unlink()
    found = check_prompts(sounds, ("ru",), PROMPTS)
    expected = [
        Finding(
            Status.WARN,
            "prompts ru",
            f"ivr-survey/intro missing in ru: callers would hear {sounds}/en/ivr-survey/intro.wav",
        )
    ]
    assert expected == found


def test_studio_wav_in_the_wrong_format_fails(sounds: Path) -> None:
    """A 44.1 kHz stereo .wav is unplayable for Asterisk's wav module: FAIL with the fix."""
    write_wav(sounds / "en" / "ivr-survey" / "intro.wav", rate=44100, channels=2)
    found = check_prompts(sounds, ("en",), PROMPTS)
    assert [Status.FAIL] == [f.status for f in found]
    assert "must be 8000 Hz mono 16-bit" in found[0].message


def test_prompts_skip_when_the_sounds_folder_is_not_configured() -> None:
    """Prompts live on the Asterisk host; without a visible folder the check says so."""
    assert [Status.SKIP] == [f.status for f in check_prompts(None, ("en",), PROMPTS)]


def test_configured_sounds_folder_that_does_not_exist_fails(tmp_path: Path) -> None:
    """A typo in sounds_dir is not silently skipped."""
    assert [Status.FAIL] == [f.status for f in check_prompts(tmp_path / "nope", ("en",), PROMPTS)]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (
            (1024, 524288),
            (Status.OK, "2721 needed, 524288 allowed (run raises the soft limit 1024 to 2721)"),
        ),
        ((4096, 4096), (Status.OK, "2721 needed, 4096 allowed")),
        (
            (1024, 1024),
            (
                Status.WARN,
                "the hard limit is 1024, below the 2721 descriptors [agi] max_sessions, "
                "max_unidentified, [web] max_connections may use: raise LimitNOFILE (systemd) "
                "or the hard ulimit -n to 2721, or lower the caps",
            ),
        ),
    ],
)
def test_open_file_limit_is_checked_against_what_the_caps_may_use(
    limits: tuple[int, int], expected: tuple[Status, str]
) -> None:
    """Defaults: 2000 sessions + 4 x 100 connections awaiting a header + 256 web
    connections + 1 AMI session + 64 others = 2721 descriptors; a hard limit below is a WARN."""
    finding = check_open_files(Config(), limits)
    assert expected == (finding.status, finding.message)
