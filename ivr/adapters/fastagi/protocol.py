"""FastAGI wire format: the `agi_*` environment block and command replies.

Pure parsing, so every reply shape captured from Asterisk 22 (fact 21) is a
table test. panoramisk 1.4 gets several of these wrong (`200 result= (timeout)`
loses its marker, `HANGUP` is taken as a reply, `520-` usage blocks shift
every later reply), which is why this module exists at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HANGUP_LINE = "HANGUP"
_REPLY = re.compile(
    r"^(?P<code>[1-5]\d\d) result=(?P<result>\S*)"
    r"(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?$",
    re.ASCII,
)
_CODE = re.compile(r"^[1-5]\d\d(?:[ -]|$)", re.ASCII)
_ENV_LINE = re.compile(r"^(?P<name>agi_[a-z0-9_]+): ?(?P<value>.*)$")
_LINKEDID = re.compile(r"^\d+\.\d+$")


class AgiProtocolError(Exception):
    """The peer sent something that is not FastAGI."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One command's reply.

    `result` is the raw text after `result=` (may be empty: `200 result= (timeout)`),
    `data` the text in parentheses (`timeout`, `dtmf`, a variable's value),
    `endpos` the sample offset for media commands.
    """

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def failed(self) -> bool:
        """`200 result=-1`: the channel hung up, or (fact 52) a prompt file is missing."""
        return self.code == 200 and self.result == "-1"

    @property
    def dead_channel(self) -> bool:
        """511: the command needs a live channel and the caller is gone."""
        return self.code == 511

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


def parse_reply(line: str) -> AgiReply:
    """Parse one final reply line (`200 ...`, `510 ...`, `511 ...`, `520 ...`)."""
    match = _REPLY.match(line)
    if match:
        endpos = match.group("endpos")
        return AgiReply(
            code=int(match.group("code")),
            result=match.group("result"),
            data=match.group("data"),
            endpos=int(endpos) if endpos is not None else None,
            text=line,
        )
    # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
    if _CODE.match(line):
        return AgiReply(code=int(line[:3]), text=line)
    raise AgiProtocolError(f"not an AGI reply: {line[:120]!r}")


def is_continuation(line: str) -> bool:
    """`520-...` opens a multi-line usage block that ends with a `520 ` line."""
    return len(line) >= 4 and _CODE.match(line) is not None and line[3] == "-"


def parse_environment_line(line: str) -> tuple[str, str]:
    match = _ENV_LINE.match(line)
    if not match:
        raise AgiProtocolError(f"not an agi_* header line: {line[:120]!r}")
    return match.group("name"), match.group("value")


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The environment Asterisk sends when a channel enters AGI(agi://...)."""

    environment: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.environment:
            if key == name:
                return value
        return default

    @property
    def script(self) -> str:
        """The route: `nps` for `agi://host:4573/nps?x=y`."""
        return self.get("agi_network_script").split("?", 1)[0].strip("/")

    @property
    def channel(self) -> str:
        return self.get("agi_channel")

    @property
    def uniqueid(self) -> str:
        return self.get("agi_uniqueid")

    @property
    def language(self) -> str:
        return self.get("agi_language") or "en"

    @property
    def arguments(self) -> tuple[str, ...]:
        args: list[str] = []
        index = 1
        while True:
            name = f"agi_arg_{index}"
            if not any(key == name for key, _ in self.environment):
                return tuple(args)
            args.append(self.get(name))
            index += 1

    @property
    def linkedid_argument(self) -> str | None:
        """The first AGI argument when it has a Linkedid's shape (`1795329453.8`).

        Older dialplans pass other things first (the lab's pass the queue name),
        so an argument that is not shaped like a Linkedid is not trusted.
        """
        args = self.arguments
        if args and _LINKEDID.match(args[0]):
            return args[0]
        return None


def options(arguments: tuple[str, ...]) -> dict[str, str]:
    """`key=value` AGI arguments after the Linkedid (dialplan/README.md).

    The dialplan always passes each key it knows, empty when it does not apply
    (`optin=`), so an empty value means "not given" and is left out. Arguments
    that are not `key=value` are left out too; the route says which it ignored.
    """
    found: dict[str, str] = {}
    for argument in arguments[1:]:
        key, separator, value = argument.partition("=")
        if separator and key and value:
            found[key.strip().lower()] = value.strip()
    return found


def unknown_to_none(value: str | None) -> str | None:
    """Asterisk writes absent caller data as `unknown`/`<unknown>` or leaves it empty."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped in ("", "unknown", "<unknown>"):
        return None
    return stripped


def quote_argument(value: str) -> str:
    """Quote one AGI command argument (for prompt names and VERBOSE text)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'
