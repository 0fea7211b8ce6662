"""AMI framing as a table: bytes in, (whole messages, unfinished rest) out.

Every way a TCP read can cut the stream is a plain value here, with no
protocol, transport or event loop around it.
"""

from __future__ import annotations

import pytest

from ivr.adapters.ami.framing import (
    MAX_MESSAGE_BYTES,
    is_runaway,
    split_messages,
    take_banner,
)
from ivr.sim.transcript import read_lines, transcripts_dir

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted"
BOOTED = b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 5\r\nStatus: Fully Booted"
HANGUP = b"Event: Hangup\r\nChannel: PJSIP/100-00000001\r\nLinkedid: 1795329453.0"


@pytest.mark.parametrize(
    ("buffer", "expected"),
    [
        pytest.param(b"", ([], b""), id="empty buffer"),
        pytest.param(HANGUP + b"\r\n\r\n", ([HANGUP], b""), id="one message"),
        pytest.param(
            LOGIN_OK + b"\r\n\r\n" + BOOTED + b"\r\n\r\n",
            ([LOGIN_OK, BOOTED], b""),
            id="two in one chunk",
        ),
        pytest.param(
            HANGUP + b"\r\n\r\n" + BOOTED[:20],
            ([HANGUP], BOOTED[:20]),
            id="one whole, the next begun",
        ),
        pytest.param(HANGUP + b"\r\n", ([], HANGUP + b"\r\n"), id="last line, no empty line yet"),
        pytest.param(HANGUP + b"\r\n\r", ([], HANGUP + b"\r\n\r"), id="cut inside the end"),
        pytest.param(
            b"\r\n\r\n" + HANGUP + b"\r\n\r\n\r\n\r\n",
            ([HANGUP], b""),
            id="stray blank lines are no messages",
        ),
        pytest.param(
            b"Event: UserEvent\r\nExtra: \r\n\r\n",
            ([b"Event: UserEvent\r\nExtra: "], b""),
            id="empty last value keeps its space",
        ),
        pytest.param(
            b"Event: Hangup\n\nChannel: X\r\n\r\n",
            ([b"Event: Hangup\n\nChannel: X"], b""),
            id="LF-only is no message end (Asterisk 22 sends CRLF only)",
        ),
        pytest.param(
            "Event: Newchannel\r\nCallerIDName: Ñandú محمد\r\n\r\n".encode(),
            (["Event: Newchannel\r\nCallerIDName: Ñandú محمد".encode()], b""),
            id="UTF-8 left as bytes",
        ),
    ],
)
def test_split_messages(buffer: bytes, expected: tuple[list[bytes], bytes]) -> None:
    assert expected == split_messages(buffer)


@pytest.mark.parametrize(
    ("buffer", "expected"),
    [
        pytest.param(b"", (None, b""), id="empty buffer"),
        pytest.param(BANNER, ("11.0.0", b""), id="banner alone"),
        pytest.param(
            BANNER + LOGIN_OK + b"\r\n\r\n",
            ("11.0.0", LOGIN_OK + b"\r\n\r\n"),
            id="banner in the same read as the Login answer (fact 1)",
        ),
        pytest.param(BANNER[:-1], (None, BANNER[:-1]), id="banner line not yet whole"),
        pytest.param(b"Asterisk Call", (None, b"Asterisk Call"), id="banner prefix cut"),
        pytest.param(
            LOGIN_OK + b"\r\n\r\n", (None, LOGIN_OK + b"\r\n\r\n"), id="no banner, a message"
        ),
    ],
)
def test_take_banner(buffer: bytes, expected: tuple[str | None, bytes]) -> None:
    assert expected == take_banner(buffer)


def feed(stream: bytes, cuts: list[int]) -> tuple[str | None, list[bytes], bytes]:
    """Frame `stream` read in pieces ending at `cuts`, the way the protocol drives framing."""
    version: str | None = None
    messages: list[bytes] = []
    buffer = b""
    start = 0
    for cut in [*cuts, len(stream)]:
        scan_from = max(0, len(buffer) - 3)
        buffer += stream[start:cut]
        start = cut
        if version is None:
            version, rest = take_banner(buffer)
            if version is not None:
                buffer, scan_from = rest, 0
        complete, buffer = split_messages(buffer, scan_from)
        messages += complete
    return version, messages, buffer


STREAM = BANNER + LOGIN_OK + b"\r\n\r\n" + "Event: X\r\nName: Ñ\r\n\r\n".encode()


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_a_stream_cut_at_any_byte_frames_the_same(cut: int) -> None:
    expected = ("11.0.0", [LOGIN_OK, "Event: X\r\nName: Ñ".encode()], b"")
    assert expected == feed(STREAM, [cut])


def test_a_long_message_in_one_byte_reads_still_ends() -> None:
    """The scan restarts 3 bytes back, so an end cut inside `\\r\\n\\r\\n` is found."""
    message = b"Event: Status\r\n" + b"Variable: A=1\r\n" * 200
    expected = ("11.0.0", [message.removesuffix(b"\r\n")], b"")
    stream = BANNER + message + b"\r\n"
    assert expected == feed(stream, list(range(1, len(stream))))


def test_a_real_asterisk_22_capture_frames_into_its_messages() -> None:
    """The received side of a capture, with the CRLF Asterisk 22 puts on every line."""
    received = [
        line.text
        for line in read_lines(transcripts_dir() / "ami-blind-transfer.txt")
        if not line.sent
    ]
    stream = "".join(text + "\r\n" for text in received).encode()
    messages: list[bytes] = []
    lines: list[str] = []
    for text in received[1:]:
        if text:
            lines.append(text)
        elif lines:
            messages.append("\r\n".join(lines).encode())
            lines = []
    expected = ("11.0.0", messages, b"")
    assert expected == feed(stream, list(range(4096, len(stream), 4096)))


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param(0, False, id="nothing pending"),
        pytest.param(MAX_MESSAGE_BYTES, False, id="at the limit"),
        pytest.param(MAX_MESSAGE_BYTES + 1, True, id="over the limit"),
    ],
)
def test_is_runaway(size: int, expected: bool) -> None:
    assert expected == is_runaway(b"x" * size)


def test_a_message_over_the_limit_stays_unfinished_and_is_runaway() -> None:
    pending = b"X-Junk: " + b"y" * MAX_MESSAGE_BYTES + b"\r\n"
    assert (([], pending), True) == (split_messages(pending), is_runaway(pending))


def test_a_smaller_limit_is_honoured() -> None:
    assert (False, True) == (is_runaway(b"x" * 4096, 4096), is_runaway(b"x" * 4097, 4096))
