"""Reader for the lab captures of a real Asterisk 22 (AMI and FastAGI).

The simulated PBX replays these captures and the tests compare against them,
so one reader serves both: what the sim sends and what the tests expect come
from the same bytes Asterisk sent.

Format: `## ...` annotations (`## +1.234s` time markers, `EOF`, `connection #N`),
`>> text` sent by the client, `<< text` received from Asterisk, a bare `>>`/`<<`
is an empty line (the end of an AMI message or of the AGI environment block).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_TIME_MARK = re.compile(r"^## \+(\d+\.\d+)s")
_CONNECTION_MARK = re.compile(r"^## \+\d+\.\d+s ---- connection #(\d+)")
AMI_BANNER_PREFIX = "Asterisk Call Manager/"


@dataclass(frozen=True, slots=True)
class Line:
    """One captured line: `sent` is True for the client's (our) bytes."""

    sent: bool
    text: str
    at: float
    connection: int


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message (event, response or action) in captured order.

    `headers` keeps every line as an ordered (name, value) pair, with repeated
    names and exact spacing of values, because ordering and spelling are part
    of what the simulated PBX must reproduce.
    """

    sent: bool
    headers: tuple[tuple[str, str], ...]
    at: float
    connection: int

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def kind(self) -> str:
        """`Event`, `Response` or `Action`: the first header's name."""
        return self.headers[0][0] if self.headers else ""


def transcripts_dir() -> Path:
    return Path(str(resources.files("ivr.sim") / "transcripts"))


def read_lines(path: Path) -> list[Line]:
    lines: list[Line] = []
    at = 0.0
    connection = 1
    with path.open(encoding="utf-8", newline="\n") as handle:
        for raw in handle:
            text = raw.rstrip("\n")
            if text.startswith("##"):
                mark = _CONNECTION_MARK.match(text)
                if mark:
                    connection = int(mark.group(1))
                time = _TIME_MARK.match(text)
                if time:
                    at = float(time.group(1))
                continue
            if text.startswith(">>"):
                lines.append(Line(True, _payload(text), at, connection))
            elif text.startswith("<<"):
                lines.append(Line(False, _payload(text), at, connection))
    return lines


def _payload(text: str) -> str:
    # `<< value` carries one separating space; `<<` alone is an empty line.
    return text[3:] if len(text) > 2 else ""


def read_ami(name_or_path: str | Path) -> list[AmiMessage]:
    """Split an AMI capture into messages; the banner line is dropped."""
    path = _resolve(name_or_path)
    messages: list[AmiMessage] = []
    pending: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
    started: dict[bool, tuple[float, int]] = {}
    for line in read_lines(path):
        if line.text.startswith(AMI_BANNER_PREFIX) and not pending[line.sent]:
            continue
        if line.text == "":
            headers = pending[line.sent]
            if headers:
                at, connection = started.pop(line.sent)
                messages.append(AmiMessage(line.sent, tuple(headers), at, connection))
                pending[line.sent] = []
            continue
        name, _, value = line.text.partition(": ")
        if not pending[line.sent]:
            started[line.sent] = (line.at, line.connection)
        pending[line.sent].append((name, value))
    return messages


def ami_events(name_or_path: str | Path, connection: int | None = None) -> Iterator[AmiMessage]:
    for message in read_ami(name_or_path):
        if message.sent or message.kind != "Event":
            continue
        if connection is None or message.connection == connection:
            yield message


@dataclass(frozen=True, slots=True)
class AgiExchange:
    """A FastAGI capture: the environment block, then every later line in order."""

    environment: tuple[tuple[str, str], ...]
    lines: tuple[Line, ...]


def read_agi(name_or_path: str | Path) -> AgiExchange:
    environment: list[tuple[str, str]] = []
    rest: list[Line] = []
    in_environment = True
    for line in read_lines(_resolve(name_or_path)):
        if in_environment and not line.sent:
            if line.text == "":
                in_environment = False
                continue
            name, _, value = line.text.partition(": ")
            environment.append((name, value))
            continue
        rest.append(line)
    return AgiExchange(tuple(environment), tuple(rest))


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    return transcripts_dir() / str(name_or_path)
