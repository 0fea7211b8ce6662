"""FastAGI reply and header parsing, against every reply shape Asterisk 22 sent (fact 21)."""

from __future__ import annotations

import pytest

from ivr.adapters.fastagi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    is_continuation,
    options,
    parse_environment_line,
    parse_reply,
    quote_argument,
)
from ivr.sim.transcript import read_agi

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiReply(200, "0", None, None, "200 result=0")),
        ("200 result=1", AgiReply(200, "1", None, None, "200 result=1")),
        (
            "200 result=1 (1795329453.8)",
            AgiReply(200, "1", "1795329453.8", None, "200 result=1 (1795329453.8)"),
        ),
        (
            "200 result=1 (support/Agent One/1795329453.8)",
            AgiReply(
                200,
                "1",
                "support/Agent One/1795329453.8",
                None,
                "200 result=1 (support/Agent One/1795329453.8)",
            ),
        ),
        ("200 result=0 endpos=3404", AgiReply(200, "0", None, 3404, "200 result=0 endpos=3404")),
        ("200 result=51 endpos=6880", AgiReply(200, "51", None, 6880, "200 result=51 endpos=6880")),
        ("200 result=10", AgiReply(200, "10", None, None, "200 result=10")),
        ("200 result=9 (timeout)", AgiReply(200, "9", "timeout", None, "200 result=9 (timeout)")),
        ("200 result= (timeout)", AgiReply(200, "", "timeout", None, "200 result= (timeout)")),
        (
            "200 result=35 (dtmf) endpos=15040",
            AgiReply(200, "35", "dtmf", 15040, "200 result=35 (dtmf) endpos=15040"),
        ),
        (
            "200 result=0 (timeout) endpos=16000",
            AgiReply(200, "0", "timeout", 16000, "200 result=0 (timeout) endpos=16000"),
        ),
        ("200 result=-1", AgiReply(200, "-1", None, None, "200 result=-1")),
        ("200 result=-1 endpos=0", AgiReply(200, "-1", None, 0, "200 result=-1 endpos=0")),
        (DEAD, AgiReply(511, "", None, None, DEAD)),
        ("510 Invalid or unknown command", AgiReply(510, text="510 Invalid or unknown command")),
        ("200 result=1 (a (b) c)", AgiReply(200, "1", "a (b) c", None, "200 result=1 (a (b) c)")),
    ],
)
def test_every_captured_reply_shape_parses(line: str, expected: AgiReply) -> None:
    """Each reply keeps its result, its parenthesised data and its endpos."""
    assert expected == parse_reply(line)


def test_empty_result_with_timeout_keeps_the_timeout_marker() -> None:
    """`200 result= (timeout)` is "no input", which panoramisk 1.4 loses (fact 27)."""
    reply = parse_reply("200 result= (timeout)")
    assert (True, "") == (reply.timed_out, reply.result)


@pytest.mark.parametrize(
    ("line", "expected"),
    [("200 result=-1", (True, False)), (DEAD, (False, True)), ("200 result=0", (False, False))],
)
def test_hang_up_signals(line: str, expected: tuple[bool, bool]) -> None:
    """-1 is a failed command, 511 a dead channel; both end a survey."""
    reply = parse_reply(line)
    assert expected == (reply.failed, reply.dead_channel)


@pytest.mark.parametrize("line", ["", "HANGUP", "hello", "20 result=1", "abc result=1"])
def test_garbage_reply_lines_are_protocol_errors(line: str) -> None:
    """Anything that is not a reply is refused loudly, never guessed at."""
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


def test_usage_block_lines_are_continuations() -> None:
    """`520-` opens a multi-line block; `520 ` closes it."""
    expected = (True, False)
    actual = (
        is_continuation("520-Invalid command syntax.  Proper usage follows:"),
        is_continuation("520 End of proper usage."),
    )
    assert expected == actual


@pytest.mark.parametrize(
    "capture",
    [
        "fastagi-session-complete.txt",
        "fastagi-session-hangup.txt",
        "fastagi-session-utf8-callerid.txt",
        "fastagi-session-blind-transfer.txt",
        "fastagi-session-sip.txt",
        "fastagi-session-agent-leg-via-F-option.txt",
    ],
)
def test_captured_environment_blocks_parse(capture: str) -> None:
    """Every captured agi_* line parses to the same name and value."""
    exchange = read_agi(capture)
    lines = [f"{name}: {value}" for name, value in exchange.environment]
    assert list(exchange.environment) == [parse_environment_line(line) for line in lines]


def test_request_reads_route_channel_and_arguments_from_a_capture() -> None:
    """The route, channel, Uniqueid and arguments come straight from the header."""
    request = AgiRequest(read_agi("fastagi-session-blind-transfer.txt").environment)
    expected = ("nps", "1795332525.1", "1795332525.0")
    assert expected == (request.script, request.uniqueid, request.linkedid_argument)
    assert request.linkedid_argument is not None


def test_non_linkedid_first_argument_is_not_trusted() -> None:
    """The lab's older dialplan passes the queue name first: it is not a Linkedid."""
    request = AgiRequest(read_agi("fastagi-session-complete.txt").environment)
    assert (("support",), None) == (request.arguments, request.linkedid_argument)


def test_utf8_caller_name_is_kept_whole() -> None:
    """A Spanish/Persian/Russian name arrives as raw UTF-8 in agi_calleridname (fact 50)."""
    request = AgiRequest(read_agi("fastagi-session-utf8-callerid.txt").environment)
    assert "Ñandú محمد Жанна" == request.get("agi_calleridname")


def test_header_lines_that_are_not_agi_variables_are_refused() -> None:
    """A stray HTTP request or port scan is not mistaken for Asterisk."""
    with pytest.raises(AgiProtocolError):
        parse_environment_line("GET / HTTP/1.1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0123456789*#", '"0123456789*#"'), ("", '""'), ('say "hi"', '"say \\"hi\\""')],
)
def test_arguments_are_quoted(value: str, expected: str) -> None:
    """Escape digits and texts are sent as one quoted AGI argument."""
    assert expected == quote_argument(value)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("1795329453.8",), {}),
        (("1795329453.8", "optin=1", "initiated=agent"), {"optin": "1", "initiated": "agent"}),
        (("1795329453.8", "optin=", "initiated="), {}),
        (("1795329453.8", "support", "Optin=1"), {"optin": "1"}),
        (("optin=1",), {}),
    ],
    ids=["linkedid only", "both given", "empty means not given", "junk and case", "first is never"],
)
def test_key_value_arguments_after_the_linkedid(
    arguments: tuple[str, ...], expected: dict[str, str]
) -> None:
    """The dialplan passes optin=/initiated= after the Linkedid; empty values mean not given."""
    assert expected == options(arguments)
