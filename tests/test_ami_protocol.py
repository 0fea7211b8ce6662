"""AMI framing in our protocol: events, responses, garbage and runaway messages."""

from __future__ import annotations

import asyncio
import logging

import pytest
from panoramisk.actions import Action

from ivr.adapters.ami.client import Utf8AmiProtocol
from ivr.adapters.ami.framing import MAX_MESSAGE_BYTES
from ivr.sim.transcript import read_ami
from tests.helpers.ami_stubs import Factory, Transport


def make() -> tuple[Utf8AmiProtocol, Factory, Transport]:
    protocol = Utf8AmiProtocol()
    transport = Transport()
    protocol.connection_made(transport)
    factory = Factory()
    protocol.factory = factory
    return protocol, factory, transport


def wire(headers: tuple[tuple[str, str], ...]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()


def test_captured_stream_yields_every_event_with_exact_headers() -> None:
    """All events of the main capture, byte for byte as Asterisk sent them, arrive unchanged."""
    captured = [
        m for m in read_ami("ami-queue-call-survey.txt") if not m.sent and m.kind == "Event"
    ]
    protocol, factory, _ = make()
    stream = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(wire(m.headers) for m in captured)
    for start in range(0, len(stream), 1000):
        protocol.data_received(stream[start : start + 1000])
    expected = [dict(m.headers) for m in captured]
    assert expected == [headers for headers, _ in factory.events]
    assert "11.0.0" == protocol.version


def test_repeated_headers_are_kept_in_order() -> None:
    """Status with Variables repeats `Variable:`; every value is kept."""
    protocol, factory, _ = make()
    protocol.data_received(
        b"Event: Status\r\nChannel: X\r\nVariable: MEMBERNAME=Agent One\r\n"
        b"Variable: QUEUENAME=support\r\n\r\n"
    )
    headers, repeated = factory.events[0]
    assert ("MEMBERNAME=Agent One", ("MEMBERNAME=Agent One", "QUEUENAME=support")) == (
        headers["Variable"],
        repeated["Variable"],
    )


async def test_list_events_of_a_pending_action_go_to_that_action() -> None:
    """QueueStatus items carry the ActionID; they complete the action, not the event stream."""
    protocol, factory, _ = make()
    action = Action({"Action": "QueueStatus", "ActionID": "a1"}, as_list=True)
    protocol.responses["a1"] = action
    protocol.data_received(
        b"Response: Success\r\nActionID: a1\r\nEventList: start\r\n"
        b"Message: Queue status will follow\r\n\r\n"
        b"Event: QueueEntry\r\nActionID: a1\r\nQueue: slow\r\nUniqueid: 1.2\r\n\r\n"
        b"Event: QueueStatusComplete\r\nActionID: a1\r\nEventList: Complete\r\n"
        b"ListItems: 1\r\n\r\n"
    )
    result = await asyncio.wait_for(action.future, 1.0)
    assert (["Success", "QueueEntry", "QueueStatusComplete"], []) == (
        [m.get("Response") or m.get("Event") for m in result],
        factory.events,
    )


def test_shutdown_is_an_event_and_a_lost_connection() -> None:
    """Event: Shutdown is reported to the tracker and ends the session (fact 49)."""
    protocol, factory, _ = make()
    protocol.data_received(b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\n\r\n")
    assert (["Shutdown"], 1) == ([m["Event"] for m in factory.messages], len(factory.lost))


def test_message_without_event_or_response_is_logged_not_silently_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Garbage between messages leaves a warning naming what was ignored."""
    protocol, factory, _ = make()
    with caplog.at_level(logging.WARNING):
        protocol.data_received(b"Foo: bar\r\n\r\nEvent: Hangup\r\nLinkedid: 1.1\r\n\r\n")
    assert ["Hangup"] == [headers["Event"] for headers, _ in factory.events]
    assert any("Foo: bar" in record.getMessage() for record in caplog.records)


def test_message_that_never_ends_drops_the_connection() -> None:
    """A peer streaming one endless message cannot grow our memory without bound."""
    protocol, _, transport = make()
    line = b"X-Junk: " + b"y" * 1000 + b"\r\n"
    for _ in range(MAX_MESSAGE_BYTES // len(line) + 2):
        protocol.data_received(line)
    assert transport.closed


def test_invalid_utf8_is_visible_as_replacement_characters() -> None:
    """Bytes that are not UTF-8 show as U+FFFD instead of vanishing (panoramisk drops them)."""
    protocol, factory, _ = make()
    protocol.data_received(b"Event: Newchannel\r\nCallerIDName: Bad\xff\xfeName\r\n\r\n")
    assert "Bad\ufffd\ufffdName" == factory.events[0][0]["CallerIDName"]
