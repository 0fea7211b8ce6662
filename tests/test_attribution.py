"""Which PBX a FastAGI request belongs to: pbx= argument, source address, only PBX."""

from __future__ import annotations

import ipaddress

import pytest

from ivr.adapters.fastagi.attribution import Attribution, attribute
from ivr.config.pbx import PbxConfig
from ivr.config.values import AmiConfig


def pbx(name: str, *addresses: str) -> PbxConfig:
    networks = tuple(ipaddress.ip_network(address) for address in addresses)
    return PbxConfig(name, AmiConfig(name=name), networks)


TWO = (pbx("paris", "10.0.0.5", "10.0.1.0/24"), pbx("lyon", "10.0.2.5"))
NO_ADDRESS = "source address 10.9.9.9 is in no PBX's agi_addresses and no pbx= argument was given"


@pytest.mark.parametrize(
    ("pbxs", "argument", "address", "expected"),
    [
        (TWO, "lyon", "10.0.0.5", Attribution("lyon", "pbx= argument")),
        (TWO, None, "10.0.1.9", Attribution("paris", "agi_addresses")),
        (TWO, None, "::ffff:10.0.2.5", Attribution("lyon", "agi_addresses")),
        (TWO, "", "10.0.2.5", Attribution("lyon", "agi_addresses")),
        (TWO, None, "10.9.9.9", Attribution(None, NO_ADDRESS)),
        (
            TWO,
            None,
            None,
            Attribution(
                None,
                "source address ? is in no PBX's agi_addresses and no pbx= argument was given",
            ),
        ),
        (
            TWO,
            "nice",
            "10.0.0.5",
            Attribution(None, "pbx=nice names no configured PBX (configured: paris, lyon)"),
        ),
        ((pbx("solo"),), None, "10.9.9.9", Attribution("solo", "the only PBX")),
        ((pbx("solo", "10.0.0.5"),), None, "10.9.9.9", Attribution("solo", "the only PBX")),
        (
            (pbx("solo"),),
            "other",
            "10.0.0.5",
            Attribution(None, "pbx=other names no configured PBX (configured: solo)"),
        ),
    ],
    ids=[
        "argument beats address",
        "address in a network",
        "IPv4 address on an IPv6 socket",
        "empty argument is not given",
        "unknown address with two PBXs",
        "no address with two PBXs",
        "argument naming no PBX",
        "the only PBX",
        "the only PBX, from elsewhere",
        "argument naming no PBX, even alone",
    ],
)
def test_requests_are_attributed_by_argument_then_address_then_the_only_pbx(
    pbxs: tuple[PbxConfig, ...], argument: str | None, address: str | None, expected: Attribution
) -> None:
    """A wrong pbx= is refused rather than guessed: it would credit another PBX's agent."""
    assert expected == attribute(pbxs, argument=argument, address=address)
