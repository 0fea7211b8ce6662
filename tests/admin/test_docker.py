"""docker/, checked statically: CI has no Docker daemon (docker/README.md says what is untested).

compose.yaml must parse, every file it mounts must exist, and the names and
ports it wires together must agree with each other and with ivr.config.settings's
defaults. The Asterisk configuration is loaded exactly as the container would
see it: the mounted files are laid out as /etc/asterisk in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ivr.admin.check_ami import NEEDED_CLASSES
from ivr.admin.prompts import load_catalog
from ivr.config.settings import AgiConfig, load
from ivr.config.values import AmiConfig, ConfigError
from tests.helpers.asterisk_conf import ConfFile, build_dialplan, classes, load_conf

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse docker/compose.yaml")

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SERVICE = "ivr-survey"
ENTRYPOINT = DOCKER / "asterisk" / "entrypoint.sh"
# What an admin puts in docker/.env; compose substitutes it into both services.
TEST_SECRET = "3f9c1a7e5b2d4c6f8a0b1c2d3e4f5a6b"
_REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z_]+):\?[^}]+\}$")


def interpolated(environment: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """A service's environment after compose's `${NAME:?message}` substitution."""
    resolved = {}
    for key, value in environment.items():
        text = str(value)
        if required := _REQUIRED_VARIABLE.match(text):
            text = values[required.group("name")]
        assert "${" not in text, f"{key}: only ${{NAME:?message}} is substituted here"
        resolved[key] = text
    return resolved


def render_manager_account(
    template: Path, target: Path, secret: str
) -> subprocess.CompletedProcess[str]:
    """Run the Asterisk container's entrypoint as it starts, with `true` as Asterisk."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "IVR_SURVEY_AMI_SECRET": secret,
        "IVR_SURVEY_MANAGER_TEMPLATE": str(template),
        "IVR_SURVEY_MANAGER_CONF": str(target),
    }
    return subprocess.run(  # noqa: S603 - our own entrypoint script with fixed arguments
        ["/bin/sh", str(ENTRYPOINT), "true"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found = compose["services"][name]
    assert isinstance(found, dict)
    return found


def mounts(compose: dict[str, Any], name: str) -> list[tuple[str, str]]:
    """(source, target) of a service's volumes, `:ro` dropped."""
    pairs = []
    for entry in service(compose, name).get("volumes", []):
        source, target = entry.split(":")[:2]
        pairs.append((source, target))
    return pairs


def is_bind(source: str) -> bool:
    return source.startswith((".", "/"))


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(path):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def stage_name(stage: list[tuple[str, str]]) -> str:
    return stage[0][1].split()[-1] if " AS " in stage[0][1].upper() else ""


def test_compose_parses_and_has_the_four_services(compose: dict[str, Any]) -> None:
    """PostgreSQL, the prompt builder, the service and Asterisk."""
    assert {"postgres", "prompts", SERVICE, "asterisk"} == set(compose["services"])


def test_every_mounted_file_exists_and_every_volume_is_declared(compose: dict[str, Any]) -> None:
    """Bind mounts point at files of this repository; named volumes are declared at the top."""
    missing, undeclared = [], []
    for name in compose["services"]:
        for source, _ in mounts(compose, name):
            if is_bind(source):
                if not (DOCKER / source).exists():
                    missing.append(source)
            elif source not in (compose.get("volumes") or {}):
                undeclared.append(source)
    assert ([], []) == (missing, undeclared)


def test_build_contexts_dockerfiles_and_targets_exist(compose: dict[str, Any]) -> None:
    """Every build names an existing context, Dockerfile and (if any) stage."""
    for name, spec in compose["services"].items():
        build = spec.get("build")
        if build is None:
            continue
        context = DOCKER / build["context"]
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), name
        target = build.get("target")
        if target:
            assert target in [stage_name(s) for s in stages(dockerfile)], name


def test_service_environment_is_a_valid_config_with_default_ports(compose: dict[str, Any]) -> None:
    """The compose environment loads as ivr-survey configuration; ports are the defaults."""
    secrets = {"IVR_SURVEY_AMI_SECRET": TEST_SECRET}
    environment = interpolated(service(compose, SERVICE)["environment"], secrets)
    try:
        config = load(None, environ=environment)
    except ConfigError as error:
        pytest.fail(f"compose environment is not a valid configuration: {error.problems}")
    assert (AmiConfig().port, AgiConfig().port) == (config.ami.port, config.agi.port)
    assert config.ami.host in compose["services"]
    assert "0.0.0.0" == config.agi.host  # noqa: S104 - the value compose must set, not a bind
    postgres = service(compose, "postgres")["environment"]
    user, password, database = (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    expected_url = f"postgresql+asyncpg://{user}:{password}@postgres:5432/{database}"
    assert expected_url == config.database.url


@pytest.fixture(scope="module")
def etc_asterisk(compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/etc/asterisk as the Asterisk container sees it: every mounted file at its target name."""
    etc = tmp_path_factory.mktemp("etc-asterisk")
    for source, target in mounts(compose, "asterisk"):
        if is_bind(source) and target.startswith("/etc/asterisk/"):
            shutil.copy(DOCKER / source, etc / Path(target).name)
    template = {target: source for source, target in mounts(compose, "asterisk")}
    secret = interpolated(
        service(compose, "asterisk")["environment"], {"IVR_SURVEY_AMI_SECRET": TEST_SECRET}
    )
    rendered = render_manager_account(
        DOCKER / template["/opt/ivr-survey/manager-ivr-survey.conf"],
        etc / "manager-ivr-survey.conf",
        secret["IVR_SURVEY_AMI_SECRET"],
    )
    assert (0, "") == (rendered.returncode, rendered.stderr)
    return etc


def loaded(etc: Path, name: str) -> ConfFile:
    conf = load_conf(etc / name)
    assert [] == [str(p) for p in conf.problems]
    return conf


def test_manager_account_matches_the_service_credentials_and_network(
    compose: dict[str, Any], etc_asterisk: Path
) -> None:
    """User and secret agree with compose; the account admits the service's fixed address."""
    environment = interpolated(
        service(compose, SERVICE)["environment"], {"IVR_SURVEY_AMI_SECRET": TEST_SECRET}
    )
    users = {c.name: c for c in loaded(etc_asterisk, "manager.conf").effective()}
    account = users[environment["IVR_SURVEY_AMI_USERNAME"]]
    assert TEST_SECRET == environment["IVR_SURVEY_AMI_SECRET"] == account.get("secret")
    assert NEEDED_CLASSES == classes(account.get("read"))
    address = ipaddress.ip_address(service(compose, SERVICE)["networks"]["ivr"]["ipv4_address"])
    permitted = [ipaddress.ip_network(p, strict=False) for p in account.values("permit")]
    assert any(address in network for network in permitted)
    subnet = ipaddress.ip_network(compose["networks"]["ivr"]["ipam"]["config"][0]["subnet"])
    assert address in subnet
    assert "5038" == users["general"].get("port") == str(AmiConfig().port)


def test_dialplan_as_mounted_sends_the_survey_to_the_service(etc_asterisk: Path) -> None:
    """The container's dialplan is well-formed, its jumps land, and its AGI URL is the service."""
    conf = loaded(etc_asterisk, "extensions.conf")
    plan = build_dialplan(conf)
    assert () == plan.problems
    assert [] == [str(p) for p in plan.check_targets()]
    globals_ = conf.named("globals")[0]
    expected = f"agi://{SERVICE}:{AgiConfig().port}/nps"
    assert expected == globals_.get("IVR_SURVEY_AGI_URL")


def test_queue_members_are_softphones_of_pjsip_conf(etc_asterisk: Path) -> None:
    """Queues inherit the survey template, and every member is a configured PJSIP endpoint."""
    queues = [c for c in loaded(etc_asterisk, "queues.conf").effective() if c.name != "general"]
    endpoints = {
        c.name
        for c in loaded(etc_asterisk, "pjsip.conf").effective()
        if c.get("type") == "endpoint"
    }
    assert {"support", "sales"} == {q.name for q in queues}
    for queue in queues:
        assert "yes" == queue.get("setinterfacevar") == queue.get("setqueuevar")
        for member in queue.values("member"):
            interface = member.split(",")[0].strip()
            assert interface.removeprefix("PJSIP/") in endpoints, interface


def test_prompts_are_built_for_the_languages_asterisk_links(compose: dict[str, Any]) -> None:
    """Languages built = languages of the catalog = folders the Asterisk image links."""
    command = service(compose, "prompts")["command"]
    built = command[command.index("--lang") + 1].split(",")
    out = command[command.index("--out") + 1]
    catalog = list(load_catalog().languages)
    dockerfile = (DOCKER / "asterisk" / "Dockerfile").read_text(encoding="utf-8")
    linked = re.search(r"for lang in ([a-z ]+); do", dockerfile)
    assert linked is not None
    assert catalog == built == linked.group(1).split()
    assert ("prompts", out) in mounts(compose, "prompts")
    assert ("prompts", "/opt/ivr-survey/sounds") in mounts(compose, "asterisk")
    assert '"/opt/ivr-survey/sounds/$lang/ivr-survey"' in dockerfile


def test_service_image_is_non_root_with_healthcheck_and_the_fastagi_port() -> None:
    """The default (last) stage is the service: USER not root, HEALTHCHECK, EXPOSE 4573."""
    dockerfile = DOCKER / "Dockerfile"
    final = stages(dockerfile)[-1]
    assert "service" == stage_name(final)
    users = [args for kind, args in final if kind == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert any(kind == "HEALTHCHECK" for kind, _ in final)
    assert [str(AgiConfig().port)] == [args for kind, args in final if kind == "EXPOSE"]


def test_every_copied_file_exists_and_passes_the_dockerignore() -> None:
    """COPY sources exist in the build context (the repository) and are not ignored."""
    dockerfile = DOCKER / "Dockerfile"
    sources = []
    for kind, args in instructions(dockerfile):
        if kind == "COPY" and "--from" not in args:
            sources.extend(args.split()[:-1])
    assert sources
    assert [] == [s for s in sources if not (REPO / s).exists()]
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert [] == [s for s in sources if s.rstrip("/") not in allowed]


def test_healthcheck_finds_a_listening_socket_on_the_default_port() -> None:
    """docker/healthcheck.py reads /proc/net/tcp rows: LISTEN (0A) on 4573 (0x11DD) is healthy."""
    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    header = "  sl  local_address rem_address   st tx_queue rx_queue\n"
    listening = header + "   0: 00000000:11DD 00000000:0000 0A 00000000:00000000\n"
    connected = header + "   0: 0100007F:11DD 0100007F:A000 01 00000000:00000000\n"
    assert AgiConfig().port == module.DEFAULT_PORT
    assert module.listening(AgiConfig().port, (listening,))
    assert not module.listening(AgiConfig().port, (connected,))


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        ("", "set IVR_SURVEY_AMI_SECRET in docker/.env"),
        ("change-me", "set IVR_SURVEY_AMI_SECRET in docker/.env"),
        ("abc;def", "may hold only letters, digits"),
        ("two words", "may hold only letters, digits"),
    ],
)
def test_asterisk_refuses_to_start_without_a_usable_secret_of_its_own(
    tmp_path: Path, secret: str, complaint: str
) -> None:
    """An unset, placeholder or unparseable secret stops the container with a
    reason, never starting on a default."""
    target = tmp_path / "manager-ivr-survey.conf"
    rendered = render_manager_account(REPO / "dialplan" / "manager-ivr-survey.conf", target, secret)
    assert (64, True, False) == (rendered.returncode, complaint in rendered.stderr, target.exists())


def test_compose_takes_the_secret_from_the_environment_for_both_sides(
    compose: dict[str, Any],
) -> None:
    """Neither the service nor Asterisk carries a secret written in the repository."""
    for name in (SERVICE, "asterisk"):
        value = str(service(compose, name)["environment"]["IVR_SURVEY_AMI_SECRET"])
        required = _REQUIRED_VARIABLE.match(value)
        assert required is not None, value
        assert "IVR_SURVEY_AMI_SECRET" == required.group("name")
