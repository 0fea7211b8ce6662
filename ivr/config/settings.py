"""Configuration: one TOML file, every key overridable from the environment.

Built once at start-up into frozen dataclasses and passed down; nothing reads
the environment later. Every bad key is reported on its own line, all at once,
so an admin fixes the file in one go. The AMI secret is kept out of `repr`
and therefore out of every log line.

Environment overrides are named `IVR_SURVEY_<SECTION>_<KEY>`, for example
`IVR_SURVEY_AMI_HOST` or `IVR_SURVEY_DATABASE_URL`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.config.pbx import PBX_SECTION, PbxConfig, parse_pbx_tables
from ivr.config.queues import QueueSurvey, check_choices, parse_queues
from ivr.config.values import (
    CONFIG_ENV,
    ENV_PREFIX,
    AmiConfig,
    ConfigError,
    check_ami,
    convert,
)
from ivr.core.policy import PolicyRules, parse_caps, parse_hours, parse_names, parse_zone
from ivr.core.privacy import Privacy
from ivr.core.questions import parse_names as parse_question_names

_PROMPT_NAME = re.compile(r"^[A-Za-z0-9_./-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]+)*$")
_LIST_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class AgiConfig:
    """The FastAGI server.

    `allowed_addresses` lists the addresses or CIDR networks Asterisk connects
    from (comma or space separated); `drain_seconds` is how long surveys in
    progress may run on after SIGTERM; `max_sessions` caps open sessions
    (past their header); `max_unidentified` caps connections still waiting for
    one, the oldest closed first to admit a newcomer.
    """

    host: str = "127.0.0.1"
    port: int = 4573
    header_timeout: float = 1.0
    command_timeout: float = 30.0
    drain_seconds: float = 30.0
    allowed_addresses: str = "127.0.0.0/8, ::1"
    max_sessions: int = 2000
    max_unidentified: int = 100
    # When set, a request must carry key=<this> (dialplan: IVR_SURVEY_AGI_KEY).
    shared_key: str = field(default="", repr=False)
    # Refuse a request for a Linkedid AMI has never seen, while AMI is connected.
    refuse_unknown_calls: bool = False

    def allowed_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The parsed `allowed_addresses`; entries that do not parse are left to the check."""
        networks = []
        for entry in _entries(self.allowed_addresses):
            with contextlib.suppress(ValueError):
                networks.append(ip_network(entry, strict=False))
        return tuple(networks)


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = field(default="", repr=False)
    # Where writes wait while the database is unreachable ("" is
    # $XDG_STATE_HOME/ivr-survey/spool, or ./spool without XDG_STATE_HOME).
    spool_dir: str = ""
    # The most writes committed in one transaction by the group-commit writer.
    batch_size: int = 500
    # Writes kept in memory when neither the database nor the spool takes them
    # (one full disk under both); past it they are lost and counted.
    max_held_writes: int = 20_000


@dataclass(frozen=True, slots=True)
class SurveyConfig:
    prompt_intro: str = "ivr-survey/intro"
    prompt_agent: str = "ivr-survey/agent-question"
    prompt_company: str = "ivr-survey/company-question"
    prompt_invalid: str = "ivr-survey/invalid"
    prompt_no_input: str = "ivr-survey/no-input"
    prompt_thanks: str = "ivr-survey/thanks"
    answer_timeout: float = 5.0
    ten_timeout: float = 1.5
    max_attempts: int = 3
    languages: str = "en"
    sounds_dir: str = ""
    # Question types, comments and language (README "What is asked"); the
    # defaults below apply to every queue without a [queues.<name>] table.
    prompt_csat: str = "ivr-survey/csat-question"
    prompt_fcr: str = "ivr-survey/fcr-question"
    prompt_ces: str = "ivr-survey/ces-question"
    prompt_comment: str = "ivr-survey/comment"
    prompt_intro_general: str = "ivr-survey/intro-general"
    prompt_invalid_key: str = "ivr-survey/invalid-key"
    prompt_language_menu: str = "ivr-survey/language-menu"
    questions: str = "agent,company"
    comment: str = "off"
    language_mode: str = "channel"
    recordings_dir: str = "/var/spool/asterisk/ivr-survey"
    recording_format: str = "wav"
    comment_max_seconds: float = 60.0
    comment_silence_seconds: float = 3.0


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    retention_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "INFO"


WEB_ROLES = ("admin", "viewer")
_ENTRY_SEPARATORS = re.compile(r"[\s,]+")
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True, slots=True)
class WebUser:
    """One dashboard login: `password_hash` is `pbkdf2_sha256$iterations$salt$hash`."""

    name: str
    role: str
    password_hash: str = field(repr=False)


READING_LANGUAGES = ("en", "fa", "ru", "eu", "es")
"""The languages of the dashboard and `ivr-survey report`, English first (the fallback)."""


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The reports API and dashboard.

    `tokens` is a list of `role:token` entries and `users` of
    `name:role:pbkdf2_sha256$...` entries, separated by commas or spaces: the
    loader only knows strings, and one string per key keeps every secret
    settable from the environment (IVR_SURVEY_WEB_TOKENS) without a file.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    tokens: str = field(default="", repr=False)
    users: str = field(default="", repr=False)
    session_secret: str = field(default="", repr=False)
    session_hours: float = 12.0
    login_failures_per_address: int = 20
    login_failures_per_user: int = 10
    login_window_seconds: float = 300.0
    metrics_auth: str = "token"
    # The dashboard's language when the browser asks for none we speak.
    language: str = "en"
    min_n: int = 30
    champions: int = 5
    outlier_z: float = 2.0
    rollup_interval: float = 60.0
    # Connection bounds (ivr/adapters/web/connections.py): at most this many open, the
    # first request's headers within header_timeout, idle keep-alive closed
    # after idle_timeout.
    max_connections: int = 256
    header_timeout: float = 10.0
    idle_timeout: float = 15.0

    def token_roles(self) -> dict[str, str]:
        """token -> role, from `tokens`; malformed entries are left to the check."""
        roles: dict[str, str] = {}
        for entry in _entries(self.tokens):
            role, _, token = entry.partition(":")
            if role in WEB_ROLES and token:
                roles[token] = role
        return roles

    def web_users(self) -> dict[str, WebUser]:
        """name -> user, from `users`; malformed entries are left to the check."""
        users: dict[str, WebUser] = {}
        for entry in _entries(self.users):
            name, role, password_hash = _user_fields(entry)
            if name and role in WEB_ROLES and password_hash:
                users[name] = WebUser(name=name, role=role, password_hash=password_hash)
        return users

    def base_url(self) -> str:
        """Where people reach the dashboard, for links sent out in alerts."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """The detractor webhook; an empty `webhook_url` turns alerts off.

    The URL is kept out of `repr` too: chat webhooks carry their secret in it.
    """

    webhook_url: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    timeout: float = 5.0
    max_attempts: int = 6
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    queue_size: int = 1000


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Who is surveyed (README "Who is surveyed"); the defaults survey every call."""

    sample_percent: float = 100.0
    min_talk_seconds: int = 0
    cooldown_days: int = 0
    daily_cap: int = 0
    daily_caps: str = ""
    include_queues: str = ""
    exclude_queues: str = ""
    include_agents: str = ""
    exclude_agents: str = ""
    hours: str = ""
    timezone: str = "UTC"
    exclude_transferred: bool = False

    def rules(self) -> PolicyRules:
        """The pure policy value; `_check_policy` has vouched for every part."""
        return PolicyRules(
            sample_percent=self.sample_percent,
            min_talk_seconds=self.min_talk_seconds,
            cooldown=timedelta(days=self.cooldown_days),
            daily_cap=self.daily_cap,
            daily_caps=parse_caps(self.daily_caps),
            include_queues=parse_names(self.include_queues),
            exclude_queues=parse_names(self.exclude_queues),
            include_agents=parse_names(self.include_agents),
            exclude_agents=parse_names(self.exclude_agents),
            hours=parse_hours(self.hours),
            zone=parse_zone(self.timezone),
            exclude_transferred=self.exclude_transferred,
        )


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """Caller numbers: `anonymize` stores only an HMAC of them; `retention_days`
    clears stored numbers and names after that many days (0 keeps them)."""

    anonymize: bool = False
    hash_key: str = field(default="", repr=False)
    retention_days: int = 0
    purge_interval_hours: float = 24.0

    def privacy(self) -> Privacy:
        return Privacy(anonymize=self.anonymize, hash_key=self.hash_key)


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    """Where the reports' days begin and end: `timezone` is an IANA name.

    Stored times stay UTC; a manager in Tehran reads "yesterday" as Tehran's
    yesterday, so the API, the dashboard, the CSV, `ivr-survey report` and the
    rollups all cut days, weeks and months in this zone.
    """

    timezone: str = "UTC"

    def zone(self) -> ZoneInfo:
        """The zone; `_check_reports` has vouched for the name."""
        return parse_zone(self.timezone)


@dataclass(frozen=True, slots=True)
class Config:
    ami: AmiConfig = field(default_factory=AmiConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    survey: SurveyConfig = field(default_factory=SurveyConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    log: LogConfig = field(default_factory=LogConfig)
    web: WebConfig = field(default_factory=WebConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    # Several Asterisk servers ([pbx.<name>] tables, ivr/config/pbx.py); empty: [ami] alone.
    pbxs: tuple[PbxConfig, ...] = ()
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    queues: Mapping[str, QueueSurvey] = field(default_factory=dict)


_SECTIONS: dict[str, type[Any]] = {
    "ami": AmiConfig,
    "agi": AgiConfig,
    "database": DatabaseConfig,
    "survey": SurveyConfig,
    "tracking": TrackingConfig,
    "log": LogConfig,
    "web": WebConfig,
    "alerts": AlertsConfig,
    "policy": PolicyConfig,
    "privacy": PrivacyConfig,
    "reports": ReportsConfig,
}


def load(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    default_database_url: str = "",
) -> Config:
    """Read the file (if any) and the environment into a validated Config."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    document: dict[str, Any] = {}
    chosen = path if path is not None else env.get(CONFIG_ENV)
    if chosen:
        document = _read_file(Path(chosen), problems)
    sections: dict[str, Any] = {}
    for name, section_type in _SECTIONS.items():
        raw = document.get(name, {})
        if not isinstance(raw, dict):
            problems.append(f"[{name}] must be a table")
            raw = {}
        sections[name] = _build_section(name, section_type, raw, env, problems)
    pbxs = parse_pbx_tables(document.get(PBX_SECTION), env, sections["ami"], problems)
    queues = parse_queues(document.get("queues", {}), problems)
    for name in document:
        if name not in _SECTIONS and name not in (PBX_SECTION, "queues"):
            problems.append(f"[{name}]: unknown section (known: {', '.join(_SECTIONS)})")
    if problems:
        raise ConfigError(problems)
    config = Config(**sections, pbxs=pbxs, queues=queues)
    if not config.database.url and default_database_url:
        database = dataclasses.replace(config.database, url=default_database_url)
        config = dataclasses.replace(config, database=database)
    return config


def _read_file(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        problems.append(f"{path}: no such configuration file")
    except PermissionError:
        problems.append(f"{path}: not readable (permission denied)")
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{path}: not valid TOML: {error}")
    return {}


def _build_section(
    section: str,
    section_type: type[Any],
    raw: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
) -> Any:
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(section_type)}
    for key in raw:
        if key not in known:
            problems.append(f"[{section}] {key}: unknown key (known: {', '.join(known)})")
    for name, spec in known.items():
        env_name = f"{ENV_PREFIX}{section.upper()}_{name.upper()}"
        where = f"{env_name} (environment)" if env_name in env else f"[{section}] {name}"
        if env_name in env:
            value: Any = env[env_name]
        elif name in raw:
            value = raw[name]
        else:
            continue
        converted = convert(value, spec.type, where, problems)
        if converted is not None:
            values[name] = converted
    try:
        built = section_type(**values)
    except TypeError as error:
        problems.append(f"[{section}]: {error}")
        return section_type()
    for check in _CHECKS.get(section, ()):
        problems.extend(f"[{section}] {problem}" for problem in check(built))
    return built


def _check_agi(agi: AgiConfig) -> list[str]:
    problems = []
    if not 0 <= agi.port < 65536:
        problems.append(f"port: {agi.port} is not a TCP port")
    if agi.header_timeout <= 0 or agi.command_timeout <= 0:
        problems.append("header_timeout/command_timeout: must be more than 0")
    if agi.drain_seconds < 0:
        problems.append("drain_seconds: must not be negative")
    if agi.max_sessions < 1:
        problems.append(f"max_sessions: {agi.max_sessions} must be at least 1")
    if agi.max_unidentified < 1:
        problems.append(f"max_unidentified: {agi.max_unidentified} must be at least 1")
    for entry in _entries(agi.allowed_addresses):
        try:
            ip_network(entry, strict=False)
        except ValueError:
            problems.append(
                f"allowed_addresses: {entry!r} is not an IP address or network (like 10.0.0.0/8)"
            )
    if not _entries(agi.allowed_addresses):
        problems.append("allowed_addresses: must name at least one address or network")
    return problems


def _check_survey(survey: SurveyConfig) -> list[str]:
    problems = []
    for spec in fields(survey):
        if spec.name.startswith("prompt_"):
            value = getattr(survey, spec.name)
            if not _PROMPT_NAME.match(value):
                problems.append(
                    f"{spec.name}: {value!r} is not a sound file name "
                    "(letters, digits, _ . / - only, no extension needed)"
                )
    if not survey.prompt_agent or not survey.prompt_company:
        problems.append("prompt_agent/prompt_company: the questions need a prompt")
    if survey.answer_timeout <= 0 or survey.ten_timeout <= 0:
        problems.append("answer_timeout/ten_timeout: must be more than 0 seconds")
    if survey.max_attempts < 1:
        problems.append(f"max_attempts: {survey.max_attempts} must be at least 1")
    for language in _LIST_SEPARATORS.split(survey.languages.strip()):
        if not _LANGUAGE.match(language):
            problems.append(
                f"languages: {language!r} is not an Asterisk language code (like en, es, pt_BR)"
            )
    problems.extend(
        f"questions: {problem}" for problem in parse_question_names(survey.questions)[1]
    )
    problems.extend(
        check_choices(
            questions="",
            language="",
            language_mode=survey.language_mode,
            comment=survey.comment,
        )
    )
    if not re.match(r"^[a-z0-9]+$", survey.recording_format):
        problems.append(f"recording_format: {survey.recording_format!r} is not a format (wav)")
    if survey.comment_max_seconds <= 0 or survey.comment_silence_seconds <= 0:
        problems.append("comment_max_seconds/comment_silence_seconds: must be more than 0")
    if not survey.recordings_dir.startswith("/"):
        problems.append("recordings_dir: must be an absolute path (Asterisk records there)")
    return problems


def _check_log(log: LogConfig) -> list[str]:
    if log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        return [f"level: {log.level!r} is not one of DEBUG, INFO, WARNING, ERROR"]
    return []


def _check_tracking(tracking: TrackingConfig) -> list[str]:
    if tracking.retention_seconds < 0:
        return ["retention_seconds: must not be negative"]
    return []


def _entries(text: str) -> list[str]:
    return [entry for entry in _ENTRY_SEPARATORS.split(text.strip()) if entry]


def _user_fields(entry: str) -> tuple[str, str, str]:
    """name, role, hash of a `users` entry; missing parts are empty."""
    name, _, rest = entry.partition(":")
    role, _, password_hash = rest.partition(":")
    return name, role, password_hash


def _check_web(web: WebConfig) -> list[str]:
    problems = []
    if not 0 <= web.port < 65536:
        problems.append(f"port: {web.port} is not a TCP port")
    if not web.host:
        problems.append("host: must not be empty")
    if web.max_connections < 1:
        problems.append(f"max_connections: {web.max_connections} must be at least 1")
    if web.header_timeout <= 0 or web.idle_timeout <= 0:
        problems.append("header_timeout/idle_timeout: must be more than 0")
    if web.public_url and not web.public_url.startswith(("http://", "https://")):
        problems.append(f"public_url: {web.public_url!r} must start with http:// or https://")
    for number, entry in enumerate(_entries(web.tokens), start=1):
        role, _, token = entry.partition(":")
        if role not in WEB_ROLES or len(token) < MIN_TOKEN_LENGTH:
            problems.append(
                f"tokens: entry {number} is not role:token (role admin or viewer, "
                f"token of at least {MIN_TOKEN_LENGTH} characters; the entry is not shown)"
            )
    for entry in _entries(web.users):
        name, role, password_hash = _user_fields(entry)
        if not name or role not in WEB_ROLES or not password_hash.startswith("pbkdf2_sha256$"):
            problems.append(
                f"users: the entry for {name!r} is not name:role:pbkdf2_sha256$... "
                "(make the hash with `python -m ivr.adapters.web.passwords`)"
            )
    if web.session_hours <= 0:
        problems.append("session_hours: must be more than 0")
    for name in ("login_failures_per_address", "login_failures_per_user"):
        if getattr(web, name) < 1:
            problems.append(f"{name}: {getattr(web, name)} must be at least 1")
    if web.login_window_seconds <= 0:
        problems.append("login_window_seconds: must be more than 0 seconds")
    if web.metrics_auth not in ("token", "none"):
        problems.append(f"metrics_auth: {web.metrics_auth!r} is not one of token, none")
    if web.language not in READING_LANGUAGES:
        problems.append(f"language: {web.language!r} is not one of {', '.join(READING_LANGUAGES)}")
    if web.min_n < 1:
        problems.append(f"min_n: {web.min_n} must be at least 1")
    if web.champions < 1:
        problems.append(f"champions: {web.champions} must be at least 1")
    if web.outlier_z <= 0:
        problems.append("outlier_z: must be more than 0")
    if web.rollup_interval <= 0:
        problems.append("rollup_interval: must be more than 0 seconds")
    return problems


def _check_alerts(alerts: AlertsConfig) -> list[str]:
    problems = []
    if alerts.webhook_url and not alerts.webhook_url.startswith(("http://", "https://")):
        problems.append("webhook_url: must start with http:// or https://")
    if alerts.webhook_url and not alerts.secret:
        problems.append("secret: needed to sign the webhook (HMAC-SHA256) when webhook_url is set")
    if alerts.timeout <= 0:
        problems.append("timeout: must be more than 0 seconds")
    if alerts.max_attempts < 1:
        problems.append(f"max_attempts: {alerts.max_attempts} must be at least 1")
    if alerts.backoff_initial <= 0 or alerts.backoff_max < alerts.backoff_initial:
        problems.append("backoff_initial/backoff_max: need 0 < backoff_initial <= backoff_max")
    if alerts.queue_size < 1:
        problems.append(f"queue_size: {alerts.queue_size} must be at least 1")
    return problems


def _check_database(database: DatabaseConfig) -> list[str]:
    problems = []
    if database.batch_size < 1:
        problems.append(f"batch_size: {database.batch_size} must be at least 1")
    if database.max_held_writes < 0:
        problems.append(f"max_held_writes: {database.max_held_writes} must be at least 0")
    return problems


def _check_policy(policy: PolicyConfig) -> list[str]:
    problems = []
    if not 0 <= policy.sample_percent <= 100:
        problems.append(f"sample_percent: {policy.sample_percent} is not between 0 and 100")
    for name in ("min_talk_seconds", "cooldown_days", "daily_cap"):
        if getattr(policy, name) < 0:
            problems.append(f"{name}: must not be negative")
    parsers = (
        ("daily_caps", parse_caps),
        ("hours", parse_hours),
        ("timezone", parse_zone),
    )
    for name, parse in parsers:
        try:
            parse(getattr(policy, name))
        except ValueError as error:
            problems.append(f"{name}: {error}")
    return problems


def _check_privacy(privacy: PrivacyConfig) -> list[str]:
    problems = []
    if privacy.anonymize and not privacy.hash_key:
        problems.append(
            "hash_key: needed when anonymize is on (caller numbers are stored as its HMAC)"
        )
    if privacy.retention_days < 0:
        problems.append("retention_days: must not be negative (0 keeps numbers forever)")
    if privacy.purge_interval_hours <= 0:
        problems.append("purge_interval_hours: must be more than 0")
    return problems


def _check_reports(reports: ReportsConfig) -> list[str]:
    try:
        parse_zone(reports.timezone)
    except ValueError as error:
        return [f"timezone: {error}"]
    return []


_CHECKS: dict[str, tuple[Callable[[Any], list[str]], ...]] = {
    "ami": (check_ami,),
    "database": (_check_database,),
    "agi": (_check_agi,),
    "survey": (_check_survey,),
    "tracking": (_check_tracking,),
    "log": (_check_log,),
    "web": (_check_web,),
    "alerts": (_check_alerts,),
    "policy": (_check_policy,),
    "privacy": (_check_privacy,),
    "reports": (_check_reports,),
}


# The secrets our example files and README show: an account still on one
# shares its password with everyone who has read them.
PLACEHOLDER_SECRETS = frozenset({"change-me", "…"})


def configured_pbxs(config: Config) -> tuple[PbxConfig, ...]:
    """The PBXs to follow: the `[pbx.*]` tables, else the one `[ami]` describes."""
    if config.pbxs:
        return config.pbxs
    return (PbxConfig(name=config.ami.name, ami=config.ami),)


def empty_secrets(config: Config) -> list[str]:
    """One line per PBX with no AMI secret: `run` refuses to start, `check` fails.

    The other commands never log in to AMI, so the configuration itself stays
    valid without one.
    """
    return [
        f"{_secret_key(config, pbx)} is empty: set the secret of the AMI account "
        f"{pbx.ami.username!r} (manager.conf), in the file or in the environment"
        for pbx in configured_pbxs(config)
        if not pbx.ami.secret.strip()
    ]


def placeholder_secrets(config: Config) -> list[str]:
    """One line per PBX still on the example's secret: `check` fails, `run` refuses.

    Anyone who can reach that AMI port knows the password from this repository.
    """
    return [
        f"{_secret_key(config, pbx)} is still the example's placeholder: give the AMI account "
        f"{pbx.ami.username!r} a secret of its own, in manager.conf and here"
        for pbx in configured_pbxs(config)
        if pbx.ami.secret.strip().lower() in PLACEHOLDER_SECRETS
        or pbx.ami.secret.strip().startswith("<")
    ]


def _secret_key(config: Config, pbx: PbxConfig) -> str:
    return f"[pbx.{pbx.name}] secret" if config.pbxs else "[ami] secret"
