"""Our FastAGI server over real TCP: header handling, HANGUP lines, usage blocks."""

from __future__ import annotations

import asyncio

from ivr.adapters.fastagi.protocol import AgiReply
from ivr.adapters.fastagi.server import AgiChannel
from tests.helpers.agi_peer import AgiPeer
from tests.helpers.fastagi import StartServer


class Recorder:
    """A route that sends fixed commands and keeps the replies it got."""

    def __init__(self, commands: list[str]) -> None:
        self.commands = commands
        self.replies: list[AgiReply] = []
        self.hangup_notified: list[bool] = []
        self.done = asyncio.Event()

    async def __call__(self, channel: AgiChannel) -> None:
        try:
            for command in self.commands:
                self.replies.append(await channel.command(command))
                self.hangup_notified.append(channel.hangup_notified)
        finally:
            self.done.set()


async def test_connection_closed_mid_header_does_not_stall_other_calls(
    make_server: StartServer,
) -> None:
    """A port scan or health check that closes early must not freeze the service."""
    route = Recorder(["ANSWER"])
    server = await make_server(route)
    _, scanner = await asyncio.open_connection("127.0.0.1", server.port)
    scanner.write(b"agi_network: yes\nagi_network_script: nps\n")
    await scanner.drain()
    scanner.close()
    peer = await AgiPeer.connect(server.port)
    assert "ANSWER" == await peer.command(timeout=2.0)
    await peer.send("200 result=0")
    await asyncio.wait_for(route.done.wait(), 2.0)
    assert [AgiReply(200, "0", text="200 result=0")] == route.replies
    peer.close()


async def test_silent_connection_is_dropped_after_the_header_timeout(
    make_server: StartServer,
) -> None:
    """A client that connects and says nothing is closed, not kept forever."""
    server = await make_server(Recorder([]), header_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert b"" == await asyncio.wait_for(reader.read(), 2.0)
    writer.close()


async def test_garbage_header_is_refused_and_closed(make_server: StartServer) -> None:
    """An HTTP request on the AGI port is closed without running any route."""
    route = Recorder(["ANSWER"])
    server = await make_server(route)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"" == await asyncio.wait_for(reader.read(), 2.0)
    assert [] == route.replies
    writer.close()


async def test_oversize_header_line_is_refused(make_server: StartServer) -> None:
    """Lines beyond the line limit close the connection instead of growing memory."""
    server = await make_server(Recorder([]), line_limit=1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: " + b"x" * 5000 + b"\n")
    assert b"" == await asyncio.wait_for(reader.read(), 2.0)
    writer.close()


async def test_hangup_line_before_a_reply_does_not_shift_later_replies(
    make_server: StartServer,
) -> None:
    """Fact 22: `HANGUP` precedes the next reply; it is a notice, not that reply."""
    route = Recorder(["GET DATA digits/1 5000 2", "GET VARIABLE MEMBERNAME", 'STREAM FILE beep ""'])
    server = await make_server(route)
    peer = await AgiPeer.connect(server.port, "fastagi-session-hangup.txt")
    assert "GET DATA digits/1 5000 2" == await peer.command()
    await peer.send("200 result=-1")
    assert "GET VARIABLE MEMBERNAME" == await peer.command()
    await peer.send("HANGUP", "200 result=1 (Agent One)")
    assert 'STREAM FILE beep ""' == await peer.command()
    await peer.send("511 Command Not Permitted on a dead channel or intercept routine")
    await asyncio.wait_for(route.done.wait(), 2.0)
    expected = [("200", "-1", None), ("200", "1", "Agent One"), ("511", "", None)]
    assert expected == [(str(r.code), r.result, r.data) for r in route.replies]
    assert [False, True, True] == route.hangup_notified
    peer.close()


async def test_unsolicited_hangup_while_idle_is_seen_by_the_next_command(
    make_server: StartServer,
) -> None:
    """Fact 22: a hang-up while no command runs sends HANGUP at once."""
    route = Recorder(["ANSWER", "GET VARIABLE MEMBERNAME"])
    server = await make_server(route)
    peer = await AgiPeer.connect(server.port, "fastagi-session-hangup-idle.txt")
    assert "ANSWER" == await peer.command()
    await peer.send("200 result=0", "HANGUP")
    assert "GET VARIABLE MEMBERNAME" == await peer.command()
    await peer.send("200 result=1 (Agent One)")
    await asyncio.wait_for(route.done.wait(), 2.0)
    assert ("Agent One", [False, True]) == (route.replies[1].data, route.hangup_notified)
    peer.close()


async def test_multi_line_usage_error_is_one_reply(make_server: StartServer) -> None:
    """A `520-` block is read whole, so the next command gets its own reply."""
    route = Recorder(["GET DATA", "ANSWER"])
    server = await make_server(route)
    peer = await AgiPeer.connect(server.port)
    assert "GET DATA" == await peer.command()
    await peer.send(
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET DATA <file to be streamed> [timeout] [max digits]",
        "520 End of proper usage.",
    )
    assert "ANSWER" == await peer.command()
    await peer.send("200 result=0")
    await asyncio.wait_for(route.done.wait(), 2.0)
    assert [520, 200] == [reply.code for reply in route.replies]
    peer.close()


async def test_many_simultaneous_sessions_are_all_served(make_server: StartServer) -> None:
    """A queue emptying at shift end opens many sessions at once; none waits on another."""
    route = Recorder(["ANSWER"])
    server = await make_server(route)
    peers = await asyncio.gather(*(AgiPeer.connect(server.port) for _ in range(200)))
    commands = await asyncio.gather(*(peer.command() for peer in peers))
    assert ["ANSWER"] * 200 == commands
    for peer in peers:
        peer.close()


async def test_stop_cancels_sessions_that_outlive_the_grace_period(
    make_server: StartServer,
) -> None:
    """Shutdown is bounded even when Asterisk never answers."""
    route = Recorder(["ANSWER"])
    server = await make_server(route, command_timeout=60.0)
    peer = await AgiPeer.connect(server.port)
    assert "ANSWER" == await peer.command()
    await asyncio.wait_for(server.stop(grace=0.2), 2.0)
    assert 0 == server.open_sessions
    peer.close()
