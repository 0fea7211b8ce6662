"""Several Asterisk servers in one configuration: `[pbx.<name>]` tables."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ivr.config.pbx import PbxConfig
from ivr.config.settings import configured_pbxs, load
from ivr.config.values import AmiConfig, ConfigError

TWO_PBXS = """
[pbx.paris]
host = "10.0.0.5"
username = "ivr"
secret = "paris-secret"
agi_addresses = "10.0.0.5, 10.0.1.0/24"

[pbx.lyon]
host = "10.0.2.5"
port = 5039
secret = "lyon-secret"
ping_interval = 3
agi_addresses = "10.0.2.5 2001:db8::/64"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr-survey.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), environ=environ or {})
    return raised.value.problems


def test_each_pbx_table_is_one_pbx_with_its_own_connection(tmp_path: Path) -> None:
    """The table's name names the PBX; the [ami] keys describe its manager connection."""
    config = load(write(tmp_path, TWO_PBXS), environ={})

    expected = (
        ("paris", "10.0.0.5", 5038, "ivr", "paris-secret", 10.0),
        ("lyon", "10.0.2.5", 5039, "ivr-survey", "lyon-secret", 3.0),
    )
    assert expected == tuple(
        (p.name, p.ami.host, p.ami.port, p.ami.username, p.ami.secret, p.ami.ping_interval)
        for p in configured_pbxs(config)
    )
    assert ("paris", "lyon") == tuple(p.ami.name for p in config.pbxs)


def test_the_single_ami_section_is_one_pbx_named_by_its_name(tmp_path: Path) -> None:
    """Existing configurations keep working unchanged."""
    config = load(write(tmp_path, '[ami]\nhost = "10.9.9.9"\nname = "pbx-main"\n'), environ={})

    [pbx] = configured_pbxs(config)
    assert ("pbx-main", "10.9.9.9", ()) == (pbx.name, pbx.ami.host, pbx.agi_addresses)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.5", "paris"),
        ("10.0.1.77", "paris"),
        ("::ffff:10.0.1.77", "paris"),
        ("10.0.2.5", "lyon"),
        ("2001:db8::15", "lyon"),
        ("10.0.3.1", None),
        ("not-an-address", None),
    ],
)
def test_agi_addresses_tell_which_pbx_a_connection_comes_from(
    tmp_path: Path, address: str, expected: str | None
) -> None:
    """Single addresses and CIDR networks; an IPv4 peer on an IPv6 socket still matches."""
    config = load(write(tmp_path, TWO_PBXS), environ={})

    senders = [pbx.name for pbx in config.pbxs if pbx.sends_from(address)]
    assert ([expected] if expected else []) == senders


def test_environment_overrides_a_pbx_key(tmp_path: Path) -> None:
    """IVR_SURVEY_PBX_<NAME>_<KEY>, the name upper-cased with - and . as _."""
    text = '[pbx.paris-east]\nhost = "10.0.0.5"\n'
    environ = {
        "IVR_SURVEY_PBX_PARIS_EAST_SECRET": "from-env",
        "IVR_SURVEY_PBX_PARIS_EAST_PORT": "6",
    }

    [pbx] = load(write(tmp_path, text), environ=environ).pbxs

    assert ("from-env", 6) == (pbx.ami.secret, pbx.ami.port)


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    """A logged configuration never shows a PBX's AMI secret."""
    config = load(write(tmp_path, TWO_PBXS), environ={})

    shown = repr(config)
    assert (False, False) == ("paris-secret" in shown, "lyon-secret" in shown)


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        (
            '[ami]\nhost = "10.0.0.9"\n[pbx.paris]\nhost = "10.0.0.5"\n',
            {},
            ["[ami] and [pbx.*]: give one or the other; with [pbx.*] tables, move the [ami] "
             "settings (and IVR_SURVEY_AMI_* variables) into a [pbx.<name>] table"],
        ),
        (
            '[pbx.paris]\nhost = "10.0.0.5"\n',
            {"IVR_SURVEY_AMI_HOST": "10.0.0.9"},
            ["[ami] and [pbx.*]: give one or the other; with [pbx.*] tables, move the [ami] "
             "settings (and IVR_SURVEY_AMI_* variables) into a [pbx.<name>] table"],
        ),
        (
            '[pbx.a]\nagi_addresses = "10.0.0.0/24"\n[pbx.b]\nagi_addresses = "10.0.0.7"\n',
            {},
            ["[pbx.a] and [pbx.b] agi_addresses: 10.0.0.0/24 and 10.0.0.7/32 overlap; a FastAGI "
             "connection from there could not be attributed"],
        ),
        (
            '[pbx.paris-1]\n[pbx."paris.1"]\n',
            {},
            ["[pbx.paris-1] and [pbx.paris.1]: the same PBX to the environment "
             "(IVR_SURVEY_PBX_PARIS_1_...); rename one"],
        ),
        (
            '[pbx.paris]\nagi_addresses = "10.0.0.5, 10.0.0.300, pbx.example"\n',
            {},
            ["[pbx.paris] agi_addresses: '10.0.0.300', 'pbx.example' is not an IP address or "
             "network (like 10.0.0.5, 10.0.1.0/24 or 2001:db8::/64)"],
        ),
        (
            '[pbx.paris]\nport = 0\nhots = "x"\n',
            {},
            ["[pbx.paris] hots: unknown key (known: host, port, username, secret, "
             "connect_timeout, action_timeout, ping_interval, ping_timeout, reconnect_min, "
             "reconnect_max, auth_retry_min, max_list_items, max_tracked_calls, "
             "max_queued_events, agi_addresses)",
             "[pbx.paris] port: 0 is not a TCP port"],
        ),
        (
            '[pbx.paris]\nport = "many"\n',
            {"IVR_SURVEY_PBX_LYON_HOST": "10.0.0.6"},
            ["[pbx.paris] port: expected a whole number, got 'many'",
             "IVR_SURVEY_PBX_LYON_HOST (environment): names no key of a [pbx.<name>] table "
             "(the environment overrides PBXs of the file; it cannot add one)"],
        ),
        (
            '[pbx."bad name!"]\n[pbx.ok]\nname = "x"\n',
            {},
            ["[pbx.bad name!]: the name must be 1-63 letters, digits, _ . - "
             "(it names this PBX in every stored call)",
             "[pbx.ok] name: unknown key (known: host, port, username, secret, "
             "connect_timeout, action_timeout, ping_interval, ping_timeout, reconnect_min, "
             "reconnect_max, auth_retry_min, max_list_items, max_tracked_calls, "
             "max_queued_events, agi_addresses)"],
        ),
        ("pbx = 3\n", {}, ["[pbx] must hold one table per PBX, like [pbx.paris]"]),
    ],
    ids=[
        "[ami] and [pbx.*]",
        "[ami] from the environment and [pbx.*]",
        "overlapping agi_addresses",
        "names alike to the environment",
        "bad addresses",
        "unknown key and bad value",
        "bad type and a variable for no table",
        "bad name and the name key",
        "pbx not a table",
    ],
)  # fmt: skip
def test_bad_pbx_tables_get_one_line_per_problem(
    tmp_path: Path, text: str, environ: dict[str, str], expected: list[str]
) -> None:
    """Every problem at once, each naming its table and key, secrets never shown."""
    assert expected == problems_of(tmp_path, text, environ)


def test_a_pbx_config_is_plain_data() -> None:
    """Built directly (tests, the demo) it needs only a name and an AMI connection."""
    pbx = PbxConfig("paris", AmiConfig(name="paris"), (ipaddress.ip_network("127.0.0.2"),))

    assert (True, False) == (pbx.sends_from("127.0.0.2"), pbx.sends_from("127.0.0.3"))
