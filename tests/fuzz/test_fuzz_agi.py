"""FastAGI input under fuzzing: the header parser, the reply parser, and the server over TCP.

Parsers return a value or raise `AgiProtocolError`, nothing else. The server,
fed any header bytes or any reply lines, closes the session with a log line
(never a traceback), within its timeouts, and runs the route only for a
well-formed header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st

from ivr.adapters.fastagi.protocol import AgiProtocolError, parse_environment_line, parse_reply
from ivr.adapters.fastagi.route import key_or
from ivr.adapters.fastagi.server import AgiChannel, FastAgiServer
from ivr.core import survey
from tests.fuzz.settings import fuzz

LINE_LIMIT = 512
HEADER = b"agi_network: yes\nagi_network_script: nps\nagi_channel: PJSIP/x-1\n\n"

reply_lines = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"\A[0-9]{3}( result=-?[0-9a-z]{0,12}( \([^)]{0,10}\))?( endpos=-?[0-9]+)?)?\Z"),
    st.sampled_from(
        [
            "200 result=99999999999",
            "200 result=-5",
            "200 result=1114112",
            "520-Invalid command syntax.",
            "HANGUP",
            "100 result=0 Trying...",
            "200 result=",
        ]
    ),
)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured_logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("ivr")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@fuzz(300)
@given(reply_lines)
def test_reply_parser_returns_a_reply_or_a_protocol_error(line: str) -> None:
    """No ValueError, IndexError or other surprise escapes parse_reply."""
    try:
        reply = parse_reply(line)
    except AgiProtocolError:
        return
    assert 100 <= reply.code <= 599


@fuzz(300)
@given(reply_lines)
def test_every_parsed_reply_maps_to_a_survey_reply(line: str) -> None:
    """Any result code Asterisk could send (even past the last Unicode character) maps cleanly."""
    try:
        reply = parse_reply(line)
    except AgiProtocolError:
        return
    assert isinstance(key_or(reply, survey.Timeout()), survey.Reply)


@fuzz(300)
@given(st.text(max_size=120))
def test_header_line_parser_returns_a_pair_or_a_protocol_error(line: str) -> None:
    try:
        name, _ = parse_environment_line(line)
    except AgiProtocolError:
        return
    assert name.startswith("agi_")


async def exchange(header: bytes, replies: list[str]) -> tuple[int, bool]:
    """Serve one connection: send `header`, answer each command with the next reply.

    Returns how many commands the route sent and whether the server closed the
    connection by itself in time.
    """
    commands = 0

    async def route(channel: AgiChannel) -> None:
        for _ in range(len(replies) + 1):
            await channel.command("GET VARIABLE X")

    server = FastAgiServer(
        route, host="127.0.0.1", port=0, header_timeout=0.2, command_timeout=0.1,
        line_limit=LINE_LIMIT,
    )  # fmt: skip
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(header)
        if not replies:
            writer.write_eof()
        closed = False
        try:
            for reply in replies:
                line = await asyncio.wait_for(reader.readline(), 2.0)
                if not line:
                    closed = True
                    break
                commands += 1
                writer.write(reply.encode("utf-8", errors="replace") + b"\n")
            if not closed:
                await asyncio.wait_for(reader.read(), 3.0)
                closed = True
        except ConnectionError:
            closed = True
        writer.close()
    finally:
        await server.stop(grace=1.0)
    return commands, closed


@fuzz(40)
@given(st.one_of(st.binary(max_size=1500), st.binary(max_size=100).map(lambda b: HEADER[:40] + b)))
def test_any_header_bytes_end_in_a_logged_close_without_a_traceback(header: bytes) -> None:
    with captured_logs() as logs:
        commands, closed = asyncio.run(exchange(header, []))
    assert closed
    assert [] == [r.getMessage() for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
    if b"\n\n" not in header:
        assert 0 == commands


@fuzz(40)
@given(st.lists(reply_lines.filter(lambda line: "\n" not in line and "\r" not in line), max_size=4))
def test_any_reply_lines_end_the_session_cleanly(replies: list[str]) -> None:
    """Garbage, oversize lines or silence: the session ends with a log line, no traceback."""
    with captured_logs() as logs:
        _, closed = asyncio.run(exchange(HEADER, [*replies, "x" * (LINE_LIMIT * 2)]))
    assert closed
    assert [] == [r.getMessage() for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
