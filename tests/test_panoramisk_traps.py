"""Proof of the panoramisk 1.4 breakages that made us replace parts of it.

Each test first shows panoramisk failing on bytes a real Asterisk 22 sends,
then shows our replacement handling the same bytes. If panoramisk is ever
upgraded and a proof starts failing, the replacement may be retired.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.fast_agi import Application
from panoramisk.manager import Manager
from panoramisk.utils import parse_agi_result

from ivr.adapters.ami.client import Utf8AmiProtocol
from ivr.adapters.fastagi.protocol import parse_reply
from ivr.adapters.fastagi.server import AgiChannel, FastAgiServer
from tests.helpers.agi_peer import AgiPeer

UTF8_EVENT = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/sipp-00000001\r\n"
    "CallerIDNum: +989121234567\r\nCallerIDName: Ñandú محمد Жанна\r\n"
    "Uniqueid: 1795333000.1\r\nLinkedid: 1795333000.1\r\n\r\n"
).encode()

PANORAMISK_FASTAGI_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from panoramisk.fast_agi import Application

    async def nps(request):
        await request.send_command("ANSWER")

    async def main():
        app = Application()
        app.add_route("nps", nps)
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(30)

    asyncio.run(main())
    """
)


class _Factory:
    """The bits of panoramisk's Manager that AMIProtocol calls back into."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.forgetable_actions = ("ping", "login")
        self.awaiting_actions: list[Any] = []

    def dispatch(self, message: Any) -> None:
        self.events.append(message)

    def dispatch_headers(self, headers: dict[str, str], repeated: object) -> None:
        self.events.append(headers)

    def connection_lost(self, exc: object) -> None:
        return None


class _Transport(asyncio.Transport):
    def write(self, data: Any) -> None:
        return None

    def close(self) -> None:
        return None


def _feed_split(protocol: AMIProtocol, payload: bytes) -> _Factory:
    factory = _Factory()
    protocol.connection_made(_Transport())
    protocol.factory = factory
    protocol.encoding = "utf8"
    split = payload.index("Ñ".encode()) + 1  # cut inside the two bytes of Ñ
    protocol.data_received(payload[:split])
    protocol.data_received(payload[split:])
    return factory


def test_panoramisk_drops_a_utf8_character_split_across_reads() -> None:
    """panoramisk decodes each TCP chunk alone with errors='ignore': `Ñandú` becomes `andú`."""
    factory = _feed_split(AMIProtocol(), UTF8_EVENT)
    assert "andú محمد Жанна" == factory.events[0]["CallerIDName"]


def test_our_ami_protocol_keeps_a_utf8_character_split_across_reads() -> None:
    """The incremental decoder keeps the caller's name whole."""
    factory = _feed_split(Utf8AmiProtocol(), UTF8_EVENT)
    assert "Ñandú محمد Жанна" == factory.events[0]["CallerIDName"]


def test_panoramisk_loses_the_timeout_marker_of_an_empty_get_data() -> None:
    """`200 result= (timeout)` (no input, fact 21) parses with no timeout flag in panoramisk."""
    assert ("", "") == parse_agi_result("200 result= (timeout)")["result"]
    assert "timeout" == parse_reply("200 result= (timeout)").data


def test_panoramisk_turns_a_failed_command_into_an_error_dict() -> None:
    """`200 result=-1` becomes {'error': 'AGIAppError'}: callers must check dicts, not codes."""
    assert "AGIAppError" == parse_agi_result("200 result=-1")["error"]


async def test_panoramisk_takes_a_hangup_line_as_the_next_reply() -> None:
    """Replaying fastagi-session-hangup.txt: every reply after HANGUP is off by one."""
    replies: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def route(request: Any) -> None:
        for command in ("GET DATA digits/1 5000 2", "GET VARIABLE MEMBERNAME", "VERBOSE x 1"):
            replies.append(await request.send_command(command))
        done.set()

    app = Application()
    app.add_route("nps", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer = await AgiPeer.connect(port, "fastagi-session-hangup.txt")
    await peer.command()
    await peer.send("200 result=-1")
    await peer.command()
    await peer.send("HANGUP", "200 result=1 (Agent One)")
    await peer.command()
    await peer.send("200 result=1")
    await asyncio.wait_for(done.wait(), 2.0)
    # GET VARIABLE got "HANGUP" as its reply, VERBOSE got GET VARIABLE's value.
    assert "AGIResultHangup" == replies[1]["error"]
    assert ("1", "Agent One") == replies[2]["result"]
    peer.close()
    server.close()
    await server.wait_closed()


async def test_our_server_keeps_replies_in_step_after_a_hangup_line() -> None:
    """The same bytes through our FastAGI channel: each command gets its own reply."""
    values: list[str | None] = []
    done = asyncio.Event()

    async def route(channel: AgiChannel) -> None:
        for command in ("GET DATA digits/1 5000 2", "GET VARIABLE MEMBERNAME", "VERBOSE x 1"):
            values.append((await channel.command(command)).data)
        done.set()

    server = FastAgiServer(route, host="127.0.0.1", port=0)
    await server.start()
    peer = await AgiPeer.connect(server.port, "fastagi-session-hangup.txt")
    await peer.command()
    await peer.send("200 result=-1")
    await peer.command()
    await peer.send("HANGUP", "200 result=1 (Agent One)")
    await peer.command()
    await peer.send("200 result=1")
    await asyncio.wait_for(done.wait(), 2.0)
    assert [None, "Agent One", None] == values
    peer.close()
    await server.stop(grace=0.5)


def _connect_and_ask(port: int) -> bool:
    """Close one connection mid-header, then see whether a real request is still served."""

    async def probe() -> bool:
        _, scanner = await asyncio.open_connection("127.0.0.1", port)
        scanner.write(b"agi_network: yes\n")
        await scanner.drain()
        scanner.close()
        await asyncio.sleep(0.2)
        peer = await AgiPeer.connect(port)
        try:
            return "ANSWER" == await peer.command(timeout=2.0)
        except TimeoutError:
            return False
        finally:
            peer.close()

    return asyncio.run(probe())


def test_panoramisk_fastagi_freezes_on_a_connection_closed_mid_header() -> None:
    """`reader.read()` at EOF returns without yielding: the whole event loop spins forever.

    Run in a child process, because the freeze would stop this test's loop too.
    """
    child = subprocess.Popen(  # noqa: S603 - runs our own fixed script with this interpreter
        [sys.executable, "-c", PANORAMISK_FASTAGI_SERVER],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        assert False is _connect_and_ask(port)
    finally:
        child.kill()
        child.wait()


async def test_panoramisk_connect_resolves_before_login() -> None:
    """`Manager.connect()` is done when TCP connects, although Asterisk never answered Login."""
    accepted = asyncio.Event()

    async def mute_asterisk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()

    server = await asyncio.start_server(mute_asterisk, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    manager = Manager(
        host="127.0.0.1", port=port, username="u", secret="s", loop=asyncio.get_running_loop()
    )
    await manager.connect()
    await asyncio.wait_for(accepted.wait(), 2.0)
    assert (True, False) == (manager._connected, manager.authenticated)
    manager.close()
    server.close()
    await server.wait_closed()
