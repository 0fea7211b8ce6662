"""FastAGI turnaround as Asterisk sees it: kernel timestamps of the packets.

Asterisk's AGI thread writes a reply and blocks in read() for the next
command, so the gap a caller hears is the time between those two packets on
the wire. The simulated PBX is Python and shares the machine with the
service; when its event loop is busy it notices a command late, and a gap
measured on its side includes that delay. tcpdump stamps each packet in the
kernel as it crosses loopback, which is the same for a fast peer and a slow
one, so the gaps read from the capture are the service's own.

The capture holds only the FastAGI port's packets. Each TCP connection's two
byte streams are cut into lines; a line's time is that of the packet that
completed it. `gaps` pairs every reply (a line from the PBX) with the command
that follows it, except the first command (`firsts`: from the first line of
the environment block to the first command), as bench/sim_process.py does.

Needs tcpdump (Debian package tcpdump) and the right to capture (root or
CAP_NET_RAW); `available()` says whether both are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import struct
from dataclasses import dataclass, field
from pathlib import Path

_NANOSECOND_MAGIC = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_TCP = 6
_SYN = 0x02


def available() -> bool:
    return shutil.which("tcpdump") is not None and os.geteuid() == 0


@dataclass
class _Stream:
    """One direction of one TCP connection, as bytes in sequence order."""

    next_seq: int | None = None
    pending: bytes = b""
    broken: bool = False


@dataclass
class _Connection:
    lines: list[tuple[float, bool, str]] = field(default_factory=list)
    """(time, sent by the service, text) in capture order."""
    to_service: _Stream = field(default_factory=_Stream)
    from_service: _Stream = field(default_factory=_Stream)


@dataclass(frozen=True)
class Measured:
    gaps: list[float]
    firsts: list[float]
    connections: int
    broken: int
    dropped: int
    """Packets the kernel dropped before tcpdump read them (from its exit report)."""


class LoopbackCapture:
    """tcpdump on `lo` for one TCP port while the `async with` block runs."""

    def __init__(self, port: int, path: Path) -> None:
        self._port = port
        self._path = path
        self._process: asyncio.subprocess.Process | None = None
        self._report = ""

    async def __aenter__(self) -> LoopbackCapture:
        self._process = await asyncio.create_subprocess_exec(
            "tcpdump",
            "-i",
            "lo",
            "-n",
            "-U",
            "-s",
            "0",
            "-B",
            "65536",
            "--time-stamp-precision=nano",
            "-w",
            str(self._path),
            f"tcp port {self._port}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._process.stderr is not None
        line = await asyncio.wait_for(self._process.stderr.readline(), 10.0)
        if b"listening on" not in line:
            raise RuntimeError(f"tcpdump did not start: {line.decode(errors='replace')}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGINT)
        _, report = await asyncio.wait_for(self._process.communicate(), 30.0)
        self._report = report.decode(errors="replace")

    def measured(self) -> Measured:
        dropped = 0
        for line in self._report.splitlines():
            if "dropped by kernel" in line:
                dropped = int(line.split()[0])
        connections = _connections(self._path.read_bytes(), self._port)
        gaps: list[float] = []
        firsts: list[float] = []
        broken = 0
        for connection in connections:
            if connection.to_service.broken or connection.from_service.broken:
                broken += 1
                continue
            lines = connection.lines
            first = next((i for i, (_, by_service, _) in enumerate(lines) if by_service), None)
            if first is None:
                continue
            firsts.append(lines[first][0] - lines[0][0])
            for index in range(1, len(lines)):
                reply_at, reply_by_service, _ = lines[index - 1]
                at, by_service, _ = lines[index]
                if index != first and by_service and not reply_by_service:
                    gaps.append(at - reply_at)
        return Measured(gaps, firsts, len(connections), broken, dropped)


def _connections(data: bytes, port: int) -> list[_Connection]:
    """Every connection to `port` in a pcap (nanosecond, Ethernet).

    A SYN starts a new connection even on a pair of ports seen before: the
    PBX's side may reuse an ephemeral port within one run.
    """
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    if magic != _NANOSECOND_MAGIC or linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"not a nanosecond Ethernet pcap (magic {magic:#x}, link {linktype})")
    found: list[_Connection] = []
    current: dict[tuple[int, int], _Connection] = {}
    offset = 24
    while offset + 16 <= len(data):
        seconds, nanoseconds, captured, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        segment = _tcp_segment(frame)
        if segment is None:
            continue
        source, destination, seq, flags, payload = segment
        to_service = destination == port
        key = (source, destination) if to_service else (destination, source)
        if flags & _SYN and to_service:
            current[key] = _Connection()
            found.append(current[key])
        connection = current.get(key)
        if connection is None:  # began before the capture
            continue
        stream = connection.to_service if to_service else connection.from_service
        if flags & _SYN:
            stream.next_seq = (seq + 1) % (1 << 32)
            continue
        if payload:
            at = seconds + nanoseconds / 1e9
            _receive(connection, stream, seq, payload, at=at, by_service=not to_service)
    return found


def _tcp_segment(frame: bytes) -> tuple[int, int, int, int, bytes] | None:
    """(source port, destination port, seq, flags, payload) of an IPv4 TCP frame."""
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != _ETHERTYPE_IPV4:
        return None
    ip = frame[14:]
    header = (ip[0] & 0x0F) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    if ip[9] != _TCP:
        return None
    tcp = ip[header:total]
    source, destination, seq = struct.unpack_from("!HHI", tcp, 0)
    return source, destination, seq, tcp[13], tcp[(tcp[12] >> 4) * 4 :]


def _receive(
    connection: _Connection,
    stream: _Stream,
    seq: int,
    payload: bytes,
    *,
    at: float,
    by_service: bool,
) -> None:
    """Append a segment's new bytes (a retransmitted part is skipped) and emit
    the lines it completes; a hole (bytes the capture missed) breaks the stream."""
    end = (seq + len(payload)) % (1 << 32)
    if stream.next_seq is not None:
        already = (stream.next_seq - seq) % (1 << 32)
        if already >= 1 << 31:
            stream.broken = True
            return
        if already >= len(payload):
            return
        payload = payload[already:]
    stream.next_seq = end
    stream.pending += payload
    *complete, stream.pending = stream.pending.split(b"\n")
    for line in complete:
        connection.lines.append((at, by_service, line.decode(errors="replace")))
