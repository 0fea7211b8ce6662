"""AMI framing (`Utf8AmiProtocol`) under arbitrary bytes, split at arbitrary points.

Whatever Asterisk (or something pretending to be it) sends: no exception
escapes `data_received`, memory stays bounded by the runaway-message limit,
and well-formed events mixed with garbage are all still delivered, in order.
"""

from __future__ import annotations

import time
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from ivr.adapters.ami.client import Utf8AmiProtocol
from tests.fuzz.settings import fuzz
from tests.helpers.ami_stubs import Factory, Transport

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
SMALL_LIMIT = 4096

header_names = st.sampled_from(
    ["Channel", "Uniqueid", "Linkedid", "CallerIDName", "Queue", "Variable", "ActionID", "X"]
)
header_values = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=40
)
events = st.builds(
    lambda name, headers: (("Event", name), *headers),
    st.sampled_from(["Newchannel", "QueueCallerJoin", "BridgeEnter", "Hangup", "AgentConnect"]),
    st.lists(st.tuples(header_names.filter(lambda n: n != "ActionID"), header_values), max_size=6),
)
garbage = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=120).map(lambda text: text.encode("utf-8", errors="replace")),
    st.sampled_from(
        [
            b"Response: Success\r\nActionID: 1\r\nActionID: 2",
            b"Foo: x\r\nEvent: a\r\nEvent: b",
            b"Response: Follows\r\n",
            b"Event: Shutdown\r\nShutdown: Cleanly",
            b"\xff\xfe\xc3",
            b":\r\n: \r\n",
        ]
    ),
).filter(lambda block: b"\r\n\r\n" not in block)


def feed_in_pieces(protocol: Utf8AmiProtocol, stream: bytes, cuts: list[int]) -> int:
    """Feed `stream` split at `cuts`; return the largest buffer seen between reads."""
    largest = 0
    start = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        protocol.data_received(stream[start:cut])
        largest = max(largest, len(protocol._buffer))
        start = cut
    return largest


def make() -> tuple[Utf8AmiProtocol, Factory, Transport]:
    protocol = Utf8AmiProtocol()
    transport = Transport()
    protocol.connection_made(transport)
    factory = Factory()
    protocol.factory = factory
    return protocol, factory, transport


@fuzz(300)
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=40))
def test_arbitrary_bytes_never_raise_and_never_outgrow_the_message_limit(
    stream: bytes, cuts: list[int]
) -> None:
    """Random bytes, random read boundaries: no exception, buffer within the limit."""
    protocol, _, _ = make()
    with mock.patch("ivr.adapters.ami.client.MAX_MESSAGE_BYTES", SMALL_LIMIT):
        largest = feed_in_pieces(protocol, BANNER + stream, cuts)
    assert largest <= SMALL_LIMIT


@fuzz(100)
@given(
    st.lists(st.one_of(events.map(lambda e: ("event", e)), garbage.map(lambda g: ("junk", g)))),
    st.lists(st.integers(min_value=0), max_size=60),
)
def test_well_formed_events_among_garbage_are_all_delivered_in_order(
    blocks: list[tuple[str, object]], cuts: list[int]
) -> None:
    """Each garbage block is a message of its own; no event next to it is lost or reordered."""
    protocol, factory, _ = make()
    stream = BANNER
    expected = []
    for kind, block in blocks:
        if kind == "event":
            headers = block
            assert isinstance(headers, tuple)
            stream += "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n"
            expected.append(headers[0][1])
        else:
            assert isinstance(block, bytes)
            stream += block + b"\r\n\r\n"
    feed_in_pieces(protocol, stream, cuts)
    delivered = iter(headers.get("Event") for headers, _ in factory.events)
    assert all(name in delivered for name in expected), (expected, factory.events)


@fuzz(20)
@given(st.integers(min_value=1, max_value=64), st.integers(min_value=1, max_value=4096))
def test_a_runaway_message_in_small_reads_is_cut_off_quickly(
    line_length: int, chunk_size: int
) -> None:
    """A message that never ends drops the connection at the limit, without quadratic work."""
    protocol, _, transport = make()
    line = b"X" * (line_length - 1) + b"\n"
    stream = BANNER + line * (SMALL_LIMIT * 3 // len(line) + 1)
    started = time.perf_counter()
    with mock.patch("ivr.adapters.ami.client.MAX_MESSAGE_BYTES", SMALL_LIMIT):
        for start in range(0, len(stream), chunk_size):
            protocol.data_received(stream[start : start + chunk_size])
    assert True is transport.closed
    assert time.perf_counter() - started < 1.0
