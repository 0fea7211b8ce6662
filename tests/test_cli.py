"""The command line as a user runs it: demo, export, report, and its error messages."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import ivr_survey

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("demo")
    result = ivr_survey("demo", "--calls", "4", "--seed", "7", cwd=folder)
    return folder, result


def test_demo_runs_the_service_against_the_simulated_pbx(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """`ivr-survey demo --calls N` places N calls, prints each, then the NPS report."""
    folder, result = demo_run
    lines = result.stdout.splitlines()
    calls = [line for line in lines if line.startswith("call ")]
    assert (0, 4) == (result.returncode, len(calls)), result.stderr[-2000:]
    assert "demo: 4 calls done" in lines
    assert any(line.startswith("agent     all") for line in lines)
    assert (folder / "ivr-survey-demo.db").exists()
    assert "Traceback" not in result.stderr


def test_the_demo_lays_down_generated_history_and_says_so(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """30 days of generated calls come before the live ones; the output says they are
    generated, and the report counts far more answers than the 4 live calls."""
    _, result = demo_run
    lines = result.stdout.splitlines()
    history = [line for line in lines if line.startswith("demo: generated history")]
    agent_all = next(line for line in lines if line.startswith("agent     all"))
    assert 1 == len(history), result.stdout[-2000:]
    assert "over the 30 days before today" in history[0]
    assert int(agent_all.split()[2].replace(",", "")) > 30 * 10


def test_a_second_demo_run_keeps_the_history_it_has(tmp_path: Path) -> None:
    """Run again on the same file: no second history on top of the first."""
    first = ivr_survey("demo", "--calls", "1", "--history-days", "2", cwd=tmp_path)
    again = ivr_survey("demo", "--calls", "1", "--history-days", "2", cwd=tmp_path)
    assert (0, 0) == (first.returncode, again.returncode), again.stderr[-2000:]
    assert "demo: this database already has earlier days; no history generated" in (
        again.stdout.splitlines()
    )


def test_the_demo_leaves_a_configured_database_alone_and_says_so(tmp_path: Path) -> None:
    """IVR_SURVEY_DATABASE_URL is not where simulated calls go; the output says where they do."""
    configured = tmp_path / "production.db"
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{configured}"}
    result = ivr_survey(
        "demo", "--calls", "1", "--seed", "1", "--history-days", "0", cwd=tmp_path, env=env
    )
    assert (0, False, True) == (
        result.returncode,
        configured.exists(),
        (tmp_path / "ivr-survey-demo.db").exists(),
    ), result.stderr[-2000:]
    assert f"demo: the configured database sqlite+aiosqlite:///{configured} is left alone" in (
        result.stdout
    )


def test_export_and_report_read_what_the_demo_stored(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """export (CSV and JSON) and report work on the demo's SQLite file."""
    folder, _ = demo_run
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'ivr-survey-demo.db'}"}
    as_csv = ivr_survey("export", "--format", "csv", cwd=folder, env=env)
    as_json = ivr_survey("export", "--format", "json", cwd=folder, env=env)
    report = ivr_survey("report", cwd=folder, env=env)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    required = {
        "pbx", "linkedid", "caller_number", "queue", "agent_name", "agent_interface",
        "hold_seconds", "talk_seconds", "agent_score", "company_score", "status",
        "started_at", "finished_at",
    }  # fmt: skip
    assert (0, 0, 0) == (as_csv.returncode, as_json.returncode, report.returncode)
    assert rows, as_csv.stderr[-2000:]
    assert required <= set(rows[0])
    assert len(rows) == len(json.loads(as_json.stdout))
    assert "question" in report.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("arguments", "locale", "expected"),
    [
        (("--lang", "fa"), {}, "سؤال"),
        ((), {"LANG": "ru_RU.UTF-8"}, "вопрос"),
        (("--lang", "es"), {"LANG": "ru_RU.UTF-8"}, "pregunta"),
        ((), {"LANG": "C.UTF-8"}, "question"),
    ],
)
def test_the_report_speaks_the_language_asked_for_else_the_locales(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
    arguments: tuple[str, ...],
    locale: dict[str, str],
    expected: str,
) -> None:
    """`--lang` wins over the shell's locale; a locale we do not speak gives English."""
    folder, _ = demo_run
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'ivr-survey-demo.db'}"}
    report = ivr_survey("report", *arguments, cwd=folder, env=env | locale)

    assert (0, expected) == (report.returncode, report.stdout.split()[0])


def test_bad_configuration_is_reported_line_by_line_with_exit_code_2(tmp_path: Path) -> None:
    """No traceback: each bad key on its own line, exit code 2."""
    config = tmp_path / "bad.toml"
    config.write_text('[ami]\nport = "x"\n[agi]\nport = 99999\n', encoding="utf-8")
    result = ivr_survey("--config", str(config), "report", cwd=tmp_path)
    expected_lines = [
        "ivr-survey: the configuration has problems:",
        "  [ami] port: expected a whole number, got 'x'",
        "  [agi] port: 99999 is not a TCP port",
    ]
    assert (2, expected_lines) == (result.returncode, result.stderr.splitlines())


def test_run_refuses_an_unmigrated_database_with_the_command_to_run(tmp_path: Path) -> None:
    """`ivr-survey run` on an empty database says to run `ivr-survey db upgrade`."""
    env = {
        "IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        "IVR_SURVEY_AMI_SECRET": "a-secret-of-its-own",
    }
    result = ivr_survey("run", cwd=tmp_path, env=env)
    assert 1 == result.returncode
    assert "ivr-survey db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command", [["report"], ["export"], ["optout", "list"], ["purge", "--days", "30"]]
)
def test_commands_that_read_never_create_a_missing_database(
    tmp_path: Path, command: list[str]
) -> None:
    """On a missing SQLite file they say what `run` says, and leave no file behind."""
    database = tmp_path / "missing.db"
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    result = ivr_survey(*command, cwd=tmp_path, env=env)
    assert (1, False) == (result.returncode, database.exists())
    assert "ivr-survey db upgrade" in result.stderr
    assert "no such table" not in result.stderr
    assert "Traceback" not in result.stderr


def test_report_on_an_unmigrated_database_says_which_command_migrates_it(tmp_path: Path) -> None:
    """An empty SQLite file gets the same advice as `run`, not `no such table: answers`."""
    database = tmp_path / "empty.db"
    database.write_bytes(b"")
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    result = ivr_survey("report", cwd=tmp_path, env=env)
    assert 1 == result.returncode
    assert "ivr-survey db upgrade" in result.stderr
    assert "no such table" not in result.stderr


def test_config_is_accepted_after_the_subcommand_too(tmp_path: Path) -> None:
    """`ivr-survey report --config x.toml` reads x.toml as `--config x.toml report` does."""
    config = tmp_path / "bad.toml"
    config.write_text('[ami]\nport = "x"\n', encoding="utf-8")
    before = ivr_survey("--config", str(config), "report", cwd=tmp_path)
    after = ivr_survey("report", "--config", str(config), cwd=tmp_path)
    expected = [
        "ivr-survey: the configuration has problems:",
        "  [ami] port: expected a whole number, got 'x'",
    ]
    assert (2, expected) == (before.returncode, before.stderr.splitlines())
    assert (2, expected) == (after.returncode, after.stderr.splitlines())


def test_db_upgrade_creates_and_names_a_missing_sqlite_folder(tmp_path: Path) -> None:
    """The folder of a new SQLite file is created, and the output says so."""
    folder = tmp_path / "var" / "lib"
    env = {"IVR_SURVEY_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'survey.db'}"}
    result = ivr_survey("db", "upgrade", cwd=tmp_path, env=env)
    assert (0, True) == (result.returncode, (folder / "survey.db").exists()), result.stderr
    assert f"created the folder {folder} for the SQLite database" in result.stdout.splitlines()


def _web_env(secret: str) -> dict[str, str]:
    from ivr.adapters.web.auth import hash_password  # noqa: PLC0415 - only these tests need it

    users = f"maria:admin:{hash_password('correct horse', iterations=1000)}"
    return {"IVR_SURVEY_WEB_USERS": users, "IVR_SURVEY_WEB_SESSION_SECRET": secret}


def test_web_login_link_prints_a_one_time_link_for_a_configured_user(tmp_path: Path) -> None:
    """The link points at the service's `/login/link` and carries a signed token."""
    result = ivr_survey("web", "login-link", "maria", cwd=tmp_path, env=_web_env("s" * 32))
    assert 0 == result.returncode, result.stderr
    (link,) = result.stdout.split()
    assert "/login/link?token=" in link


@pytest.mark.parametrize(
    ("user", "secret", "expected_in_error"),
    [
        ("maria", "", "session_secret is not set"),
        ("nobody", "s" * 32, "no [web] user 'nobody' (configured: maria)"),
    ],
)
def test_web_login_link_refuses_with_the_reason(
    tmp_path: Path, user: str, secret: str, expected_in_error: str
) -> None:
    """Without a shared secret or for an unknown user there is no link, and a clear why."""
    result = ivr_survey("web", "login-link", user, cwd=tmp_path, env=_web_env(secret))
    assert (1, "") == (result.returncode, result.stdout)
    assert expected_in_error in result.stderr


@pytest.mark.parametrize(
    ("secret", "expected_reason"),
    [
        (
            "",
            "  [ami] secret is empty: set the secret of the AMI account 'ivr-survey' "
            "(manager.conf), in the file or in the environment",
        ),
        (
            "change-me",
            "  [ami] secret is still the example's placeholder: give the AMI account "
            "'ivr-survey' a secret of its own, in manager.conf and here",
        ),
    ],
)
def test_run_refuses_an_empty_or_placeholder_ami_secret(
    tmp_path: Path, secret: str, expected_reason: str
) -> None:
    """Exit 2 before anything starts, naming the key and the account: the example's
    password would let anyone who reaches the AMI port in."""
    env = {"IVR_SURVEY_AMI_SECRET": secret, "IVR_SURVEY_AMI_PORT": "1"}
    result = ivr_survey("run", cwd=tmp_path, env=env)
    expected = ["ivr-survey: cannot run:", expected_reason]
    assert (2, expected) == (result.returncode, result.stderr.splitlines())


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("", "FAIL ami: [ami] secret is empty"),
        ("change-me", "FAIL ami: [ami] secret is still the example's placeholder"),
    ],
)
def test_check_fails_on_an_empty_or_placeholder_ami_secret(
    tmp_path: Path, secret: str, expected: str
) -> None:
    """`check` says FAIL (exit 1) where it used to say OK."""
    env = {"IVR_SURVEY_AMI_SECRET": secret, "IVR_SURVEY_AMI_PORT": "1"}
    result = ivr_survey("check", "--ami-watch", "0.1", cwd=tmp_path, env=env)
    assert 1 == result.returncode
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result.stdout


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        ('[ami]\nsecret = "s3cr3t-of-ours"\n', 0o600, []),
        ('[ami]\nsecret = "s3cr3t-of-ours"\n', 0o640, []),
        (
            '[ami]\nsecret = "s3cr3t-of-ours"\n',
            0o644,
            ["holds secrets and every user of this host can read it (mode -rw-r--r--)"],
        ),
        (
            '[web]\ntokens = "admin:0123456789abcdef0123"\n',
            0o666,
            [
                "holds secrets and others can change it (mode -rw-rw-rw-)",
                "holds secrets and every user of this host can read it (mode -rw-rw-rw-)",
            ],
        ),
        ('[database]\nurl = "postgresql://ivr:pw@db/ivr"\n', 0o604, ["every user of this host"]),
        ('[database]\nurl = "sqlite:///ivr.sqlite3"\n', 0o644, []),
        ("[survey]\nanswer_timeout = 4.0\n", 0o666, []),
    ],
)
def test_check_warns_about_a_config_file_with_secrets_others_can_read_or_change(
    tmp_path: Path, content: str, mode: int, expected: list[str]
) -> None:
    """One WARN line per exposure, naming the file, its mode and the chmod that fixes it;
    a file without secrets may be world-readable."""
    config = tmp_path / "ivr-survey.toml"
    config.write_text(content, encoding="utf-8")
    config.chmod(mode)
    env = {"IVR_SURVEY_AMI_PORT": "1", "IVR_SURVEY_AMI_SECRET": "another-secret"}
    result = ivr_survey(
        "check", "--config", str(config), "--ami-watch", "0.1", cwd=tmp_path, env=env
    )
    warned = [line for line in result.stdout.splitlines() if line.startswith("WARN config:")]
    assert len(expected) == len(warned), result.stdout
    for fragment, line in zip(expected, warned, strict=True):
        assert (True, True) == (fragment in line, str(config) in line), line
