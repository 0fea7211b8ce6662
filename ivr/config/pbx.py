"""Several Asterisk servers: the `[pbx.<name>]` tables of the configuration.

One service can follow several PBXs. Each `[pbx.<name>]` table holds the
same keys as `[ami]` (its manager connection) plus `agi_addresses`: the
addresses its FastAGI connections come from (IPs or CIDR networks, separated
by commas or spaces), which is how a survey request is attributed to its PBX
when the dialplan does not pass `pbx=<name>`. The table's name is the PBX's
name in every stored call, so it replaces `[ami] name`.

The single `[ami]` section keeps working: it is one PBX named by `[ami] name`.
Both at once is refused (`[ami]` would silently be ignored), as are two names
the environment cannot tell apart and one address claimed by two PBXs (the
attribution would be a guess).

Environment overrides follow the loader's rule with the PBX name in the
middle, upper-cased with every other character than a letter or digit
turned into `_`: `IVR_SURVEY_PBX_PARIS_SECRET`. They override tables of the
file; they cannot create a PBX.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ivr.config.values import ENV_PREFIX, AmiConfig, check_ami, convert

__all__ = [
    "PBX_SECTION",
    "IpNetwork",
    "PbxConfig",
    "parse_pbx_tables",
]

PBX_SECTION = "pbx"
AGI_ADDRESSES = "agi_addresses"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_NOT_ENV = re.compile(r"[^A-Za-z0-9]")
_SEPARATORS = re.compile(r"[\s,]+")
_AMI_KEYS = {spec.name: spec for spec in fields(AmiConfig) if spec.name != "name"}
_ENV_PBX_PREFIX = f"{ENV_PREFIX}{PBX_SECTION.upper()}_"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class PbxConfig:
    """One Asterisk: its name, its manager connection, where its FastAGI comes from."""

    name: str
    ami: AmiConfig
    agi_addresses: tuple[IpNetwork, ...] = ()

    def sends_from(self, address: str) -> bool:
        """Whether a FastAGI connection from `address` comes from this PBX.

        An IPv4 peer seen through an IPv6 socket (`::ffff:10.0.0.5`) is
        matched as the IPv4 address it is.
        """
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self.agi_addresses)


def env_name(pbx: str, key: str) -> str:
    """`IVR_SURVEY_PBX_<NAME>_<KEY>` for a PBX name and key."""
    return f"{_ENV_PBX_PREFIX}{_NOT_ENV.sub('_', pbx).upper()}_{key.upper()}"


def parse_pbx_tables(
    raw: object, env: Mapping[str, str], ami: AmiConfig, problems: list[str]
) -> tuple[PbxConfig, ...]:
    """The `[pbx.*]` tables as PbxConfigs; every bad key adds one line to `problems`."""
    if raw is None:
        tables: dict[str, Any] = {}
    elif isinstance(raw, dict):
        tables = raw
    else:
        problems.append("[pbx] must hold one table per PBX, like [pbx.paris]")
        return ()
    pbxs: list[PbxConfig] = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"[pbx.{name}] must be a table (like [pbx.paris] with host = ...)")
            continue
        if not _NAME.match(name):
            problems.append(
                f"[pbx.{name}]: the name must be 1-63 letters, digits, _ . - "
                "(it names this PBX in every stored call)"
            )
            continue
        pbx = _parse_one(name, table, env, problems)
        if pbx is not None:
            pbxs.append(pbx)
    _check_env_names(tables, env, problems)
    if pbxs and ami != AmiConfig():
        problems.append(
            "[ami] and [pbx.*]: give one or the other; with [pbx.*] tables, move the "
            "[ami] settings (and IVR_SURVEY_AMI_* variables) into a [pbx.<name>] table"
        )
    problems.extend(_overlaps(pbxs))
    return tuple(pbxs)


def _parse_one(
    name: str, table: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> PbxConfig | None:
    section = f"pbx.{name}"
    known = [*_AMI_KEYS, AGI_ADDRESSES]
    for key in table:
        if key not in known:
            problems.append(f"[{section}] {key}: unknown key (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    addresses: tuple[IpNetwork, ...] = ()
    for key in known:
        variable = env_name(name, key)
        where = f"{variable} (environment)" if variable in env else f"[{section}] {key}"
        if variable in env:
            value: Any = env[variable]
        elif key in table:
            value = table[key]
        else:
            continue
        if key == AGI_ADDRESSES:
            text = convert(value, "str", where, problems)
            if text is not None:
                addresses = _networks(text, where, problems)
            continue
        converted = convert(value, _AMI_KEYS[key].type, where, problems)
        if converted is not None:
            values[key] = converted
    ami = AmiConfig(name=name, **values)
    before = len(problems)
    problems.extend(f"[{section}] {problem}" for problem in check_ami(ami))
    if len(problems) > before:
        return None
    return PbxConfig(name=name, ami=ami, agi_addresses=addresses)


def _networks(text: str, where: str, problems: list[str]) -> tuple[IpNetwork, ...]:
    networks: list[IpNetwork] = []
    bad: list[str] = []
    for entry in _SEPARATORS.split(text.strip()):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
    if bad:
        problems.append(
            f"{where}: {', '.join(map(repr, bad))} is not an IP address or network "
            "(like 10.0.0.5, 10.0.1.0/24 or 2001:db8::/64)"
        )
    return tuple(networks)


def _check_env_names(
    tables: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> None:
    """Two names the environment spells alike, and variables naming no table or key."""
    by_env: dict[str, str] = {}
    for name in tables:
        spelled = env_name(name, "")
        if spelled in by_env:
            problems.append(
                f"[pbx.{by_env[spelled]}] and [pbx.{name}]: the same PBX to the environment "
                f"({spelled}...); rename one"
            )
        by_env.setdefault(spelled, name)
    valid = {env_name(name, key) for name in tables for key in (*_AMI_KEYS, AGI_ADDRESSES)}
    for variable in sorted(env):
        if variable.startswith(_ENV_PBX_PREFIX) and variable not in valid:
            problems.append(
                f"{variable} (environment): names no key of a [pbx.<name>] table "
                "(the environment overrides PBXs of the file; it cannot add one)"
            )


def _overlaps(pbxs: list[PbxConfig]) -> list[str]:
    problems: list[str] = []
    for index, first in enumerate(pbxs):
        for second in pbxs[index + 1 :]:
            for mine in first.agi_addresses:
                for theirs in second.agi_addresses:
                    if mine.version == theirs.version and mine.overlaps(theirs):
                        problems.append(
                            f"[pbx.{first.name}] and [pbx.{second.name}] agi_addresses: "
                            f"{mine} and {theirs} overlap; a FastAGI connection from there "
                            "could not be attributed"
                        )
    return problems
