"""Who may open a FastAGI session (`ivr.adapters.guard`), and the `[agi]` keys that configure it."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from ivr.adapters.guard import RateLimitedWarnings, SessionGuard, address_allowed
from ivr.config.settings import AgiConfig, load
from ivr.config.values import ConfigError

LOOPBACK = AgiConfig().allowed_networks()


@pytest.mark.parametrize(
    ("address", "networks", "expected"),
    [
        ("127.0.0.1", LOOPBACK, True),
        ("127.8.9.10", LOOPBACK, True),
        ("::1", LOOPBACK, True),
        ("::ffff:127.0.0.1", LOOPBACK, True),
        ("10.0.0.5", LOOPBACK, False),
        ("10.0.0.5", (ip_network("10.0.0.0/24"),), True),
        ("10.0.1.5", (ip_network("10.0.0.0/24"),), False),
        ("fe80::1%eth0", (ip_network("fe80::/10"),), True),
        ("not-an-address", LOOPBACK, False),
        ("", LOOPBACK, False),
    ],
)
def test_address_is_allowed_only_inside_the_listed_networks(
    address: str, networks: tuple[IPv4Network | IPv6Network, ...], expected: bool
) -> None:
    """IPv4-mapped IPv6 peers are judged by their IPv4 address; garbage is refused."""
    assert expected == address_allowed(address, networks)


@pytest.mark.parametrize(
    ("guard", "address", "open_sessions", "expected"),
    [
        (SessionGuard(), "203.0.113.9", 10**6, None),
        (SessionGuard(networks=LOOPBACK), "127.0.0.1", 0, None),
        (
            SessionGuard(networks=LOOPBACK),
            "203.0.113.9",
            0,
            "address not in [agi] allowed_addresses",
        ),
        (SessionGuard(max_sessions=2), "127.0.0.1", 1, None),
        (
            SessionGuard(max_sessions=2),
            "127.0.0.1",
            2,
            "2 sessions already open ([agi] max_sessions)",
        ),
    ],
)
def test_session_guard_refuses_strangers_and_connections_over_the_cap(
    guard: SessionGuard, address: str, open_sessions: int, expected: str | None
) -> None:
    """No network list admits everyone; the cap counts sessions already open."""
    assert expected == guard.refusal(address, open_sessions)


def test_repeated_warnings_are_said_once_per_interval_with_the_count_of_repeats() -> None:
    """The first refusal is logged; repeats within the interval are counted into the next one."""
    now = [0.0]
    warnings = RateLimitedWarnings(lambda: now[0], interval=60.0)
    said = []
    for moment, key in [(0, "a"), (1, "a"), (2, "b"), (30, "a"), (61, "a"), (62, "a")]:
        now[0] = moment
        said.append(warnings.due(key))
    assert [0, None, 0, None, 2, None] == said


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10.0.0.0/8, bogus", "[agi] allowed_addresses: 'bogus' is not an IP address or network"),
        ("", "[agi] allowed_addresses: must name at least one address or network"),
    ],
)
def test_bad_allowed_addresses_are_reported_by_name(value: str, problem: str) -> None:
    """The allow-list is checked at load, one problem line per bad entry."""
    with pytest.raises(ConfigError) as raised:
        load(environ={"IVR_SURVEY_AGI_ALLOWED_ADDRESSES": value})
    assert any(line.startswith(problem) for line in raised.value.problems), raised.value.problems


def test_agi_guard_defaults_admit_loopback_only_and_cap_at_2000() -> None:
    """Out of the box only this host may connect (Asterisk on the same machine)."""
    config = load(environ={})
    assert (("127.0.0.0/8", "::1/128"), 2000, 30.0) == (
        tuple(str(network) for network in config.agi.allowed_networks()),
        config.agi.max_sessions,
        config.agi.drain_seconds,
    )
