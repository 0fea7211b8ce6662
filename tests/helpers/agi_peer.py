"""A scripted Asterisk peer for FastAGI transport tests.

The full simulated PBX (ivr.sim) drives the service end to end; these tests
need something smaller: replay a captured header and exact reply lines,
including the awkward ones (HANGUP, 520- blocks), at chosen moments.
"""

from __future__ import annotations

import asyncio

from ivr.sim.transcript import read_agi


class AgiPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, capture: str = "fastagi-session-complete.txt", *, args: tuple[str, ...] = ()
    ) -> AgiPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        environment = [
            (name, value)
            for name, value in read_agi(capture).environment
            if not name.startswith("agi_arg_")
        ]
        environment += [(f"agi_arg_{i}", arg) for i, arg in enumerate(args, start=1)]
        writer.write(b"".join(f"{n}: {v}\n".encode() for n, v in environment) + b"\n")
        await writer.drain()
        return cls(reader, writer)

    async def command(self, timeout: float = 5.0) -> str:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        return line.decode().rstrip("\n")

    async def send(self, *lines: str) -> None:
        self.writer.write(b"".join(line.encode() + b"\n" for line in lines))
        await self.writer.drain()

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        data = await asyncio.wait_for(self.reader.read(), timeout)
        return data == b""

    def close(self) -> None:
        self.writer.close()
