"""How many file descriptors the service may need, and raising its own limit to that.

Every FastAGI session, every FastAGI connection still waiting for its header
(up to `ivr.adapters.fastagi.server.UNIDENTIFIED_BURST` times the cap) and every web
connection is one descriptor; the database pools, the AMI sessions, the spool
and the log take a few more. The usual soft limit is 1024, below what the
defaults allow (2000 sessions alone); the hard limit is usually far higher,
and a process may raise its soft limit up to it without privileges.
"""

from __future__ import annotations

import resource

from ivr.adapters.fastagi.server import UNIDENTIFIED_BURST
from ivr.config.settings import Config, configured_pbxs

# Database connections (three pools, at most 20 on PostgreSQL), AMI, the
# listeners, the spool, the log, the recordings being served.
OTHER_DESCRIPTORS = 64


def needed(config: Config) -> int:
    """Descriptors the configured caps may use at once."""
    return (
        config.agi.max_sessions
        + UNIDENTIFIED_BURST * config.agi.max_unidentified
        + config.web.max_connections
        + len(configured_pbxs(config))
        + OTHER_DESCRIPTORS
    )


def limits() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE, with "unlimited" as a large number."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = 1 << 30
    return (
        unlimited if soft == resource.RLIM_INFINITY else soft,
        unlimited if hard == resource.RLIM_INFINITY else hard,
    )


def raise_soft_limit(wanted: int) -> int:
    """Raise the soft limit towards `wanted` (never past the hard one); the soft limit after."""
    soft, hard = limits()
    if soft >= wanted:
        return soft
    target = min(wanted, hard)
    try:
        current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, current_hard))
    except (ValueError, OSError):
        return soft
    return target
