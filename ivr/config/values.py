"""The pieces every configuration module shares: the environment's prefix,
the error, the `[ami]` keys (also each `[pbx.<name>]` table's) and the
conversion of one TOML or environment value.

Kept apart from `settings` so that `pbx` can use them without importing the
loader that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "IVR_SURVEY_"
CONFIG_ENV = "IVR_SURVEY_CONFIG"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` has one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "ivr-survey"
    secret: str = field(default="", repr=False)
    name: str = "asterisk"
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    auth_retry_min: float = 30.0
    # Memory bounds against floods: items one list answer (QueueStatus at a
    # resync) may collect, calls followed at once (the oldest ended, then the
    # longest silent, go first), and events waiting for the tracker (past it
    # the connection is read no further until it catches up).
    max_list_items: int = 50_000
    max_tracked_calls: int = 100_000
    max_queued_events: int = 100_000


def convert(value: Any, type_name: Any, where: str, problems: list[str]) -> Any:
    expected = str(type_name)
    try:
        if expected == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if expected == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if expected == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if expected == "bool":
            return _boolean(value)
    except ValueError:
        problems.append(f"{where}: expected {_article(expected)}, got {value!r}")
        return None
    raise AssertionError(f"unsupported config type {expected}")


_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


def _boolean(value: Any) -> bool:
    """TOML gives real booleans; the environment gives text (1/0, true/false, yes/no)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError


def _article(type_name: str) -> str:
    return {
        "int": "a whole number",
        "float": "a number",
        "str": "a string",
        "bool": "true or false",
    }[type_name]


def check_ami(ami: AmiConfig) -> list[str]:
    problems = []
    if not 0 < ami.port < 65536:
        problems.append(f"port: {ami.port} is not a TCP port")
    if not ami.host:
        problems.append("host: must not be empty")
    if not ami.name:
        problems.append("name: must not be empty (it names this PBX in every stored call)")
    if ami.reconnect_min <= 0 or ami.reconnect_max < ami.reconnect_min:
        problems.append("reconnect_min/reconnect_max: need 0 < reconnect_min <= reconnect_max")
    for name in ("connect_timeout", "action_timeout", "ping_interval", "ping_timeout"):
        if getattr(ami, name) <= 0:
            problems.append(f"{name}: must be more than 0")
    for name in ("max_list_items", "max_tracked_calls", "max_queued_events"):
        if getattr(ami, name) < 1:
            problems.append(f"{name}: {getattr(ami, name)} must be at least 1")
    return problems
