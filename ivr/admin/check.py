"""`ivr-survey check`: everything the service needs, verified before the first caller.

Each finding is one line, `OK`, `WARN`, `FAIL` or `SKIP`, then a topic and
what to do about it; the exit status is 1 when any line is FAIL. What is
checked, and why in this way:

- the configuration: the CLI loads it before calling `run_check`, and a bad
  key is reported there, one line each;
- the database: reachable and at the schema revision this version needs
  (`storage.database.check_migrated`, as the service does at start). A SQLite
  file that does not exist is reported without being created;
- the AMI account, in one short session: `ivr.admin.check_ami` says how the
  classes the account reads are inferred from what arrives;
- the FastAGI port can be bound (and is reachable from Asterisk's side, as
  far as a loopback address can tell);
- every prompt exists in every configured language, as Asterisk would look it
  up (`ivr.admin.prompts.find_prompt`), when Asterisk's sounds folder is visible
  from here, and every `.wav` is in the one format Asterisk's wav module reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import URL

from ivr.admin.check_ami import assess_ami, probe_ami
from ivr.admin.findings import Finding, Status
from ivr.admin.prompts import CatalogError, find_prompt, load_catalog, wav_problem
from ivr.config.settings import (
    AgiConfig,
    Config,
    configured_pbxs,
    empty_secrets,
    placeholder_secrets,
)
from ivr.config.survey_plan import prompts_in_use
from ivr.config.values import AmiConfig
from ivr.runtime import descriptors
from storage.database import (
    SQLITE_DRIVER,
    DatabaseError,
    check_migrated,
    create_engine,
    head_revision,
    normalize_url,
    redact_url,
)

log = logging.getLogger(__name__)

DATABASE_TIMEOUT = 20.0
EXIT_OK = 0
EXIT_FAILED = 1


async def run_check(
    config: Config,
    *,
    languages: Sequence[str] = ("en",),
    sounds_dir: Path | None = None,
    ami_watch: float = 3.0,
    config_source: str = "defaults and environment",
    config_file: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Run every check, print one line per finding as it is known; 1 if any FAIL."""
    stream = out if out is not None else sys.stdout
    findings: list[Finding] = []

    def report(found: Sequence[Finding]) -> None:
        for finding in found:
            findings.append(finding)
            print(finding.line(), file=stream, flush=True)

    report([Finding(Status.OK, "config", f"valid ({config_source})")])
    if config_file is not None:
        report(check_config_file(config_file))
    weak = empty_secrets(config) + placeholder_secrets(config)
    report([Finding(Status.FAIL, "ami", problem) for problem in weak])
    report([await check_database(config.database.url)])
    pbxs = configured_pbxs(config)
    for pbx in pbxs:
        probe = await probe_ami(pbx.ami, watch=ami_watch)
        found = assess_ami(probe, pbx.ami, watch=ami_watch)
        if len(pbxs) > 1:
            found = [dataclasses.replace(f, topic=f"{f.topic} {pbx.name}") for f in found]
        report(found)
    remote = next((pbx.ami for pbx in pbxs if not _loopback(pbx.ami.host)), pbxs[0].ami)
    report(await check_agi_port(config.agi, remote))
    report([check_open_files(config)])
    report(check_prompts(sounds_dir, languages, survey_prompt_names(config)))
    failed = sum(1 for f in findings if f.status is Status.FAIL)
    warned = sum(1 for f in findings if f.status is Status.WARN)
    verdict = f"{failed} problem(s) to fix" if failed else "ready"
    print(f"check: {verdict}, {warned} warning(s)", file=stream, flush=True)
    return EXIT_FAILED if failed else EXIT_OK


# Keys whose values let someone in: the AMI account, web tokens and password
# hashes, the session key, a database URL's password, a webhook's credentials.
_SECRET_KEYS = re.compile(
    r"^\s*(secret|tokens|users|session_secret|shared_key|password)\s*=\s*['\"](?=\S)"
    r"|^\s*\w*url\s*=\s*['\"][^'\"]*://[^/'\"@]*:[^/'\"@]+@",
    re.MULTILINE,
)


def check_config_file(path: Path) -> list[Finding]:
    """A file holding secrets must be readable by its owner (and group) only,
    and writable by no one else: whoever can change it can point the service at
    their own AMI or database."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return [Finding(Status.WARN, "config", f"cannot read {path}: {error.strerror}")]
    if not _SECRET_KEYS.search(text):
        return []
    findings = []
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        findings.append(
            Finding(
                Status.WARN,
                "config",
                f"{path} holds secrets and others can change it (mode {stat.filemode(mode)}): "
                f"chmod go-w {path}",
            )
        )
    if mode & stat.S_IROTH:
        findings.append(
            Finding(
                Status.WARN,
                "config",
                f"{path} holds secrets and every user of this host can read it "
                f"(mode {stat.filemode(mode)}): chmod o-rwx {path}",
            )
        )
    return findings


def check_open_files(config: Config, limits: tuple[int, int] | None = None) -> Finding:
    """`run` raises its soft open-file limit up to the hard one; below what the caps
    may use, a flood of connections would take the descriptors a survey needs."""
    wanted = descriptors.needed(config)
    soft, hard = limits if limits is not None else descriptors.limits()
    caps = "[agi] max_sessions, max_unidentified, [web] max_connections"
    if hard < wanted:
        return Finding(
            Status.WARN,
            "open files",
            f"the hard limit is {hard}, below the {wanted} descriptors {caps} may use: raise "
            f"LimitNOFILE (systemd) or the hard ulimit -n to {wanted}, or lower the caps",
        )
    raised = f" (run raises the soft limit {soft} to {wanted})" if soft < wanted else ""
    return Finding(Status.OK, "open files", f"{wanted} needed, {hard} allowed{raised}")


def survey_prompt_names(config: Config) -> tuple[str, ...]:
    """The sound files some queue's survey plays (the `[survey] prompt_*` in use)."""
    return prompts_in_use(config)


# --- database -------------------------------------------------------------------------


async def check_database(url: str) -> Finding:
    where = redact_url(url)
    try:
        normalized = normalize_url(url)
    except DatabaseError as error:
        return Finding(Status.FAIL, "database", str(error))
    if _missing_sqlite_file(normalized):
        return Finding(
            Status.FAIL,
            "database",
            f"{where}: the SQLite file does not exist: run `ivr-survey db upgrade`",
        )
    engine = create_engine(normalized)
    try:
        await asyncio.wait_for(check_migrated(engine), DATABASE_TIMEOUT)
    except DatabaseError as error:
        return Finding(Status.FAIL, "database", str(error))
    except TimeoutError:
        return Finding(Status.FAIL, "database", f"{where}: no answer in {DATABASE_TIMEOUT:g} s")
    finally:
        await engine.dispose()
    return Finding(Status.OK, "database", f"{where} reachable, schema at {head_revision()}")


def _missing_sqlite_file(url: URL) -> bool:
    """Connecting would create an empty SQLite file; a check must not leave one behind."""
    database = url.database or ""
    if url.drivername != SQLITE_DRIVER or database in ("", ":memory:"):
        return False
    return not Path(database).expanduser().exists()


# --- FastAGI ----------------------------------------------------------------------------


async def check_agi_port(agi: AgiConfig, ami: AmiConfig) -> list[Finding]:
    loop = asyncio.get_running_loop()
    where = f"{agi.host}:{agi.port}"
    try:
        server = await loop.create_server(asyncio.Protocol, agi.host, agi.port)
    except OSError as error:
        return [
            Finding(
                Status.FAIL,
                "FastAGI",
                f"cannot listen on {where}: {error.strerror or error} "
                "(if ivr-survey already runs on this host, that is why)",
            )
        ]
    server.close()
    await server.wait_closed()
    found = [Finding(Status.OK, "FastAGI", f"{where} can be bound")]
    if _loopback(agi.host) and not _loopback(ami.host):
        found.append(
            Finding(
                Status.WARN,
                "FastAGI",
                f"listening on {agi.host} while Asterisk is at {ami.host}: Asterisk cannot "
                "connect; set [agi] host = 0.0.0.0 (or this host's address)",
            )
        )
    return found


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


# --- prompts ----------------------------------------------------------------------------


def check_prompts(
    sounds_dir: Path | None, languages: Sequence[str], survey_prompts: Sequence[str]
) -> list[Finding]:
    """Each prompt in each language, as Asterisk would find it under `sounds_dir`."""
    if sounds_dir is None:
        return [
            Finding(
                Status.SKIP,
                "prompts",
                "Asterisk's sounds folder is not visible from here ([survey] sounds_dir "
                "is not set); check them on the Asterisk host",
            )
        ]
    if not sounds_dir.is_dir():
        return [Finding(Status.FAIL, "prompts", f"sounds folder {sounds_dir} does not exist")]
    try:
        dialplan_prompts = tuple(p.name for p in load_catalog().used_by("dialplan"))
    except CatalogError as error:
        return [Finding(Status.FAIL, "prompts", f"prompt catalog: {error.problems[0]}")]
    found: list[Finding] = []
    wanted = [(name, True) for name in survey_prompts]
    wanted += [(name, False) for name in dialplan_prompts if name not in survey_prompts]
    for language in languages:
        for name, required in wanted:
            found.extend(_one_prompt(sounds_dir, language, name, required=required))
    if not found:
        found.append(
            Finding(
                Status.OK,
                "prompts",
                f"{len(wanted)} prompts present for {', '.join(languages)} in {sounds_dir}",
            )
        )
    return found


def _one_prompt(sounds_dir: Path, language: str, name: str, *, required: bool) -> list[Finding]:
    located = find_prompt(sounds_dir, language, name)
    topic = f"prompts {language}"
    if located.path is None:
        user = "the survey" if required else "the dialplan recipes"
        return [
            Finding(
                Status.FAIL if required else Status.WARN,
                topic,
                f"{name} not found in any format under {sounds_dir / language}: "
                f"{user} would play nothing (ivr-survey prompts build --lang {language})",
            )
        ]
    found: list[Finding] = []
    if located.fallback:
        found.append(
            Finding(
                Status.WARN,
                topic,
                f"{name} missing in {language}: callers would hear {located.path}",
            )
        )
    problem = wav_problem(located.path)
    if problem is not None:
        found.append(Finding(Status.FAIL, topic, f"{located.path}: {problem}"))
    return found
