"""`ivr-survey` command line: run, demo, db upgrade, export, report, optout, purge, web.

Every failure a user can cause (bad config, unreachable or unmigrated
database, port in use) ends as one or a few plain lines on stderr and a
non-zero exit code; tracebacks are for `--debug` only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ivr import __version__
from ivr.config.settings import READING_LANGUAGES, Config, load
from ivr.config.values import CONFIG_ENV, ConfigError
from storage.database import (
    DatabaseError,
    default_sqlite_url,
    missing_directory,
    open_migrated,
    redact_url,
    session_factory,
    upgrade,
)
from storage.reports import export_rows, nps_report, rows_to_csv, rows_to_json

log = logging.getLogger("ivr")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
LINK_MINUTES = 15.0
MAX_HISTORY_DAYS = 365
CONFIG_HELP = "TOML configuration file (default: $IVR_SURVEY_CONFIG, if set)"
DEBUG_HELP = "log everything, with tracebacks"


class _Commands:
    """Adds subcommands that also take `--config` and `--debug` after their name.

    People write `ivr-survey report --config x.toml` as often as the other way
    round; SUPPRESS keeps a value given before the subcommand when none is given
    after it.
    """

    def __init__(self, group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._group = group

    def add_parser(self, name: str, *, help: str) -> argparse.ArgumentParser:
        parser = self._group.add_parser(name, help=help)
        parser.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr-survey", description="Post-call NPS surveys for Asterisk."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = _Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))

    commands.add_parser("run", help="run the service against the configured Asterisk")

    demo = commands.add_parser(
        "demo", help="run the whole service against the built-in simulated PBX, on SQLite"
    )
    demo.add_argument("--calls", type=int, default=None, help="stop after this many calls")
    demo.add_argument("--concurrency", type=int, default=4, help="calls in progress at once")
    demo.add_argument(
        "--database", default=None, help="database URL (default: ./ivr-survey-demo.db)"
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed for repeatable traffic")
    demo.add_argument(
        "--history-days",
        type=_days,
        default=30,
        help="days of generated history laid down before the live calls (default 30; 0: none)",
    )

    db = commands.add_parser("db", help="database schema")
    db_commands = _Commands(
        db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    )
    db_commands.add_parser("upgrade", help="create or migrate the schema to the latest version")

    prompts = commands.add_parser("prompts", help="the survey's sound files")
    prompt_commands = _Commands(
        prompts.add_subparsers(dest="prompts_command", required=True, metavar="PROMPTS_COMMAND")
    )
    build = prompt_commands.add_parser(
        "build", help="synthesize every prompt offline with espeak-ng and sox"
    )
    build.add_argument(
        "--lang", default="en,ru,fa,eu,es", help="comma-separated languages (default: all five)"
    )
    build.add_argument(
        "--out", required=True, type=Path, help="folder for <lang>/ivr-survey/<name>.<format>"
    )
    build.add_argument("--formats", default="wav", help="comma-separated: wav, ulaw, gsm")
    build.add_argument(
        "--force",
        action="store_true",
        help="also replace files ivr-survey did not write (recordings)",
    )

    check = commands.add_parser(
        "check", help="check config, database, AMI account, FastAGI port and prompts"
    )
    check.add_argument(
        "--ami-watch",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="seconds to watch AMI events to confirm the account's read classes (default: 3)",
    )

    export = commands.add_parser("export", help="print one row per survey")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    _add_period(export)

    report = commands.add_parser("report", help="print NPS overall, per agent and per queue")
    _add_period(report)
    report.add_argument(
        "--lang",
        choices=READING_LANGUAGES,
        help="the report's language (default: from LANGUAGE, LC_ALL, LC_MESSAGES or LANG; else en)",
    )

    optout = commands.add_parser("optout", help="callers who must never be surveyed")
    optout_commands = _Commands(
        optout.add_subparsers(dest="optout_command", required=True, metavar="OPTOUT_COMMAND")
    )
    for action, text in (("add", "never survey this number"), ("remove", "survey it again")):
        optout_commands.add_parser(action, help=text).add_argument("number")
    optout_commands.add_parser("list", help="print the opt-out list")

    purge = commands.add_parser(
        "purge", help="clear caller numbers and names older than [privacy] retention_days"
    )
    purge.add_argument(
        "--days", type=_positive, help="keep this many days instead (default: the config)"
    )

    web = commands.add_parser("web", help="the dashboard's users")
    web_commands = _Commands(
        web.add_subparsers(dest="web_command", required=True, metavar="WEB_COMMAND")
    )
    link = web_commands.add_parser(
        "login-link", help="print a one-time link that signs a configured [web] user in"
    )
    link.add_argument("user", help="a name from [web] users")
    link.add_argument(
        "--minutes",
        type=float,
        default=LINK_MINUTES,
        help=f"how long the link stays valid (default: {LINK_MINUTES:g})",
    )
    sessions = web_commands.add_parser("sessions", help="the dashboard's signed-in sessions")
    session_commands = _Commands(
        sessions.add_subparsers(dest="sessions_command", required=True, metavar="SESSIONS_COMMAND")
    )
    revoke = session_commands.add_parser(
        "revoke", help="sign a user (or everyone) out of every browser, on every node"
    )
    whom = revoke.add_mutually_exclusive_group(required=True)
    whom.add_argument("user", nargs="?", help="a name from [web] users")
    whom.add_argument("--all", action="store_true", help="every user")
    return parser


def _days(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_HISTORY_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of days from 0 to {MAX_HISTORY_DAYS}"
        )
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days >= 1")
    return int(text)


def _add_period(parser: argparse.ArgumentParser) -> None:
    local = "ISO 8601; without an offset, in [reports] timezone"
    parser.add_argument("--since", type=_date, help=f"from this date/time ({local})")
    parser.add_argument("--until", type=_date, help=f"before this date/time ({local})")


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date") from error
    return value


def _in_report_zone(args: argparse.Namespace, config: Config) -> None:
    """--since/--until without an offset are times of [reports] timezone: the
    days `ivr-survey report` cuts are the dashboard's days."""
    zone = config.reports.zone()
    for name in ("since", "until"):
        value = getattr(args, name, None)
        if isinstance(value, datetime) and value.tzinfo is None:
            setattr(args, name, value.replace(tzinfo=zone))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.debug)
    if args.command == "prompts":
        # Building sounds needs no configuration: a broken one must not block it.
        from ivr.admin.prompts import build_prompts, parse_list  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

        return build_prompts(
            parse_list(args.lang), args.out, parse_list(args.formats), force=args.force
        )
    try:
        config = load(args.config, default_database_url=default_sqlite_url(Path.cwd()))
        if not args.debug:
            logging.getLogger().setLevel(config.log.level.upper())
        return asyncio.run(_dispatch(args, config))
    except ConfigError as error:
        print("ivr-survey: the configuration has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseError as error:
        print(f"ivr-survey: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as error:
        print(f"ivr-survey: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as error:
        if args.debug:
            raise
        print(
            f"ivr-survey: unexpected error: {type(error).__name__}: {error} "
            "(run again with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # Alembic narrates every migration step at INFO ("Context impl SQLiteImpl.");
        # between `check`'s OK/FAIL lines and the demo's calls it is noise.
        logging.getLogger("alembic").setLevel(logging.WARNING)


async def _dispatch(args: argparse.Namespace, config: Config) -> int:
    _in_report_zone(args, config)
    if args.command == "run":
        return await _run(config, args)
    if args.command == "demo":
        from ivr.admin.demo import run_demo  # noqa: PLC0415 - the simulator loads only for demo

        return await run_demo(
            config,
            calls=args.calls,
            concurrency=args.concurrency,
            database_url=args.database,
            seed=args.seed,
            history_days=args.history_days,
        )
    if args.command == "db":
        created = missing_directory(config.database.url)
        revision = await upgrade(config.database.url)
        if created is not None:
            print(f"created the folder {created} for the SQLite database")
        print(f"database {redact_url(config.database.url)} is at revision {revision}")
        return EXIT_OK
    if args.command == "web" and args.web_command == "sessions":
        from ivr.admin.sessions_cli import revoke_sessions  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

        return await revoke_sessions(config, None if args.all else args.user)
    if args.command == "web":
        return _login_link(config, args.user, args.minutes)
    if args.command == "check":
        from ivr.admin.check import run_check  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast
        from ivr.admin.prompts import parse_list  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

        sounds_dir = config.survey.sounds_dir
        return await run_check(
            config,
            languages=parse_list(config.survey.languages),
            sounds_dir=Path(sounds_dir) if sounds_dir else None,
            ami_watch=args.ami_watch,
            config_source=args.config or os.environ.get(CONFIG_ENV) or "defaults and environment",
            config_file=_config_file(args.config),
        )
    if args.command == "export":
        return await _export(config, args.format, args.since, args.until)
    if args.command == "report":
        return await _report(config, args.since, args.until, args.lang)
    if args.command == "optout":
        from ivr.admin.privacy_cli import optout  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

        return await optout(config, args.optout_command, getattr(args, "number", None))
    if args.command == "purge":
        from ivr.admin.privacy_cli import purge_command  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

        return await purge_command(config, args.days)
    raise AssertionError(f"unhandled command {args.command}")


async def _run(config: Config, args: argparse.Namespace) -> int:
    from ivr.config.settings import empty_secrets, placeholder_secrets  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast
    from ivr.runtime.lifecycle import Lifecycle  # noqa: PLC0415 - keeps `export`/`report` light
    from ivr.runtime.service import Service  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

    if problems := empty_secrets(config) + placeholder_secrets(config):
        print("ivr-survey: cannot run:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    service = Service(config)
    await service.start()

    def apply_log_level(new: Config) -> None:
        if not args.debug:
            logging.getLogger().setLevel(new.log.level.upper())

    lifecycle = Lifecycle(
        service,
        load_config=lambda: load(args.config, default_database_url=default_sqlite_url(Path.cwd())),
        on_reloaded=apply_log_level,
    )
    lifecycle.listen()
    log.info(
        "ivr-survey %s running: AMI %s, FastAGI on %s:%d, database %s",
        __version__,
        "; ".join(
            f"{link.name} {link.config.ami.host}:{link.config.ami.port} "
            f"as {link.config.ami.username!r}"
            for link in service.links.values()
        ),
        config.agi.host,
        service.agi_port,
        redact_url(config.database.url),
    )
    await lifecycle.run()
    return EXIT_OK


def _config_file(given: str | None) -> Path | None:
    """The file the configuration was read from (as `load` chooses it), if any."""
    chosen = given or os.environ.get(CONFIG_ENV)
    return Path(chosen) if chosen else None


def _login_link(config: Config, user: str, minutes: float) -> int:
    """The link is signed with `[web] session_secret`, which the running service
    shares: without one configured, each service start picks its own key."""
    from ivr.adapters.web.auth import Authenticator  # noqa: PLC0415 - keeps `export`/`report` light
    from ivr.admin.sessions_cli import unknown_user_refusal  # noqa: PLC0415 - keeps `export`/`report` light

    if not config.web.session_secret:
        print(
            "ivr-survey: [web] session_secret is not set, so the running service signs with a "
            "key of its own that this command cannot know; set session_secret (the same for "
            "the service and this command), restart the service, and ask again",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if (refusal := unknown_user_refusal(config, user)) is not None:
        print(refusal, file=sys.stderr)
        return EXIT_FAILURE
    if not 0 < minutes <= 24 * 60:
        print("ivr-survey: --minutes must be more than 0 and at most 1440", file=sys.stderr)
        return EXIT_USAGE
    token = Authenticator(config.web).sign_in_link_token(user, valid_seconds=minutes * 60)
    print(f"{config.web.base_url()}/login/link?token={token}")
    print(
        f"valid once, for {minutes:g} minutes, while the service runs with this session_secret",
        file=sys.stderr,
    )
    return EXIT_OK


async def _export(
    config: Config, output_format: str, since: datetime | None, until: datetime | None
) -> int:
    engine = await open_migrated(config.database.url)
    try:
        rows = await export_rows(session_factory(engine), since=since, until=until)
    finally:
        await engine.dispose()
    sys.stdout.write(rows_to_csv(rows) if output_format == "csv" else rows_to_json(rows))
    return EXIT_OK


async def _report(
    config: Config, since: datetime | None, until: datetime | None, language: str | None
) -> int:
    from ivr.adapters.i18n import Reader  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast
    from ivr.admin.report_text import format_report, language_from_environment  # noqa: PLC0415 - each command loads only what it uses, so `export`/`report` start fast

    engine = await open_migrated(config.database.url)
    try:
        report = await nps_report(session_factory(engine), since=since, until=until)
    finally:
        await engine.dispose()
    reader = Reader.of(language or language_from_environment() or "en")
    sys.stdout.write(format_report(report, reader))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
