"""The FastAGI server under hostile or excessive clients, and its drain on stop, over TCP."""

from __future__ import annotations

import asyncio
import logging
import time
from ipaddress import ip_network

import pytest

from ivr.adapters.fastagi.server import AgiChannel, Drained, FastAgiServer
from ivr.adapters.guard import SessionGuard
from tests.helpers.agi_peer import AgiPeer
from tests.helpers.fastagi import StartServer


class Holder:
    """A route that sends ANSWER and then holds the session until released."""

    def __init__(self) -> None:
        self.answered = 0
        self.release = asyncio.Event()

    async def __call__(self, channel: AgiChannel) -> None:
        await channel.command("ANSWER")
        self.answered += 1
        await self.release.wait()


async def closed_at_once(port: int) -> bool:
    """Connect and see the server close the socket without a word."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return b"" == await asyncio.wait_for(reader.read(), 1.0)
    except ConnectionResetError:
        return True
    finally:
        writer.close()


async def answer(peer: AgiPeer) -> None:
    assert "ANSWER" == await peer.command(timeout=2.0)
    await peer.send("200 result=0")


async def test_a_stranger_is_closed_at_once_with_one_warning_naming_it(
    make_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer outside `allowed_addresses` never reaches a route; repeats are not re-logged."""
    route = Holder()
    guard = SessionGuard(networks=(ip_network("192.0.2.0/24"),))
    server = await make_server(route, guard=guard)
    with caplog.at_level(logging.WARNING, logger="ivr.adapters.fastagi.server"):
        results = [await closed_at_once(server.port) for _ in range(3)]
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert [True, True, True] == results
    assert ["FastAGI from 127.0.0.1: refused: address not in [agi] allowed_addresses"] == warnings
    assert 0 == route.answered


async def test_connections_beyond_max_sessions_are_closed_and_the_open_ones_go_on(
    make_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With the cap reached a new connection is closed at once; a freed slot admits again."""
    route = Holder()
    server = await make_server(route, guard=SessionGuard(max_sessions=2))
    peers = [await AgiPeer.connect(server.port) for _ in range(2)]
    for peer in peers:
        await answer(peer)
    with caplog.at_level(logging.WARNING, logger="ivr.adapters.fastagi.server"):
        refused = await closed_at_once(server.port)
    route.release.set()
    for peer in peers:
        assert await peer.closed_by_server()
    later = await AgiPeer.connect(server.port)
    assert "ANSWER" == await later.command(timeout=2.0)
    assert True is refused
    assert any(
        "2 sessions already open ([agi] max_sessions)" in r.getMessage() for r in caplog.records
    )
    later.close()


async def test_half_open_clients_do_not_delay_a_real_call_and_are_freed_by_the_header_timeout(
    make_server: StartServer,
) -> None:
    """50 clients that send half a header and stall: a real call is served at once."""
    route = Holder()
    server = await make_server(route, header_timeout=1.5)
    stallers = []
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network: yes\nagi_network_scr")
        await writer.drain()
        stallers.append((reader, writer))
    started = time.monotonic()
    peer = await AgiPeer.connect(server.port)
    await answer(peer)
    served_in = time.monotonic() - started
    freed = await asyncio.gather(*(asyncio.wait_for(reader.read(), 5.0) for reader, _ in stallers))
    assert served_in < 1.0
    assert [b""] * 50 == freed
    assert 1 == server.open_sessions
    for _, writer in stallers:
        writer.close()
    peer.close()


async def test_oversize_header_line_is_refused_with_a_clear_log_line(
    make_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The log says which limit was hit; the connection is closed."""
    server = await make_server(Holder(), line_limit=1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    with caplog.at_level(logging.WARNING, logger="ivr.adapters.fastagi.server"):
        writer.write(b"agi_network: " + b"x" * 5000 + b"\n")
        assert b"" == await asyncio.wait_for(reader.read(), 2.0)
    writer.close()
    assert any(
        "header line longer than 1024 bytes; refused; closed" in r.getMessage()
        for r in caplog.records
    )


async def test_stop_refuses_new_connections_lets_sessions_finish_and_counts_them(
    make_server: StartServer,
) -> None:
    """Open sessions finish within the grace; a probe without a header is not a survey."""
    route = Holder()
    server = await make_server(route)
    port = server.port
    peers = [await AgiPeer.connect(port) for _ in range(2)]
    for peer in peers:
        await answer(peer)
    _, probe = await asyncio.open_connection("127.0.0.1", port)
    stopping = asyncio.create_task(server.stop(grace=10.0))
    await asyncio.sleep(0.05)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    route.release.set()
    probe.close()
    assert Drained(finished=2, cut_off=0) == await asyncio.wait_for(stopping, 5.0)


async def test_hurry_cuts_the_grace_short_and_counts_the_sessions_cut_off(
    make_server: StartServer,
) -> None:
    """A second SIGTERM's effect: sessions still running are cancelled now."""
    route = Holder()
    server = await make_server(route)
    peer = await AgiPeer.connect(server.port)
    await answer(peer)
    stopping = asyncio.create_task(server.stop(grace=30.0))
    await asyncio.sleep(0.05)
    server.hurry()
    assert Drained(finished=0, cut_off=1) == await asyncio.wait_for(stopping, 2.0)
    assert await peer.closed_by_server()


async def test_oversize_reply_line_ends_the_session_with_a_clear_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply longer than the line limit: the session closes, the log names the limit."""

    async def route(channel: AgiChannel) -> None:
        await channel.command("ANSWER")

    server = FastAgiServer(route, host="127.0.0.1", port=0, line_limit=1024)
    await server.start()
    try:
        peer = await AgiPeer.connect(server.port)
        with caplog.at_level(logging.WARNING, logger="ivr.adapters.fastagi.server"):
            assert "ANSWER" == await peer.command()
            await peer.send("200 result=0 " + "x" * 5000)
            assert await peer.closed_by_server()
        peer.close()
    finally:
        await server.stop(grace=0.5)
    assert any(
        "reply line longer than 1024 bytes; refused; session closed" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
