"""AMI framing and Asterisk's event permission arithmetic (manager.c), without sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.sim.agi import find_command, parse_args
from ivr.sim.wire import (
    ALL_BITS,
    CLASS_BITS,
    ActionParser,
    classes_mask,
    delivers,
    encode,
    events_mask,
    privilege_mask,
)


def test_messages_are_crlf_lines_ending_with_an_empty_line() -> None:
    expected = b"Response: Success\r\nPing: Pong\r\n\r\n"
    assert expected == encode([("Response", "Success"), ("Ping", "Pong")])


def test_privilege_all_adds_no_class() -> None:
    """`Privilege: call,all` is the class `call` only: a `read = call` user receives it."""
    assert CLASS_BITS["call"] == privilege_mask("call,all")


def test_an_event_needs_its_class_in_both_read_and_events_masks() -> None:
    read = classes_mask(["agent", "call", "system", "user"])
    call, agi, security = (privilege_mask(p) for p in ("call,all", "agi,all", "security,all"))
    expected = [True, False, False, False]
    actual = [
        delivers(read, ALL_BITS, call),
        delivers(read, ALL_BITS, agi),
        delivers(read, ALL_BITS, security),
        delivers(read, events_mask("agent") or 0, call),
    ]
    assert expected == actual


def test_events_header_values() -> None:
    """manager.c strings_to_mask: on/off, digits, class lists; empty leaves the mask alone."""
    expected = [ALL_BITS, 0, 34, CLASS_BITS["agent"] | CLASS_BITS["call"], None]
    assert expected == [events_mask(v) for v in ("on", "off", "34", "agent,call", "")]


@given(st.lists(st.integers(1, 40), max_size=8))
def test_actions_survive_any_tcp_segmentation(cuts: list[int]) -> None:
    """However the bytes are split, the same actions come out (CRLF or bare LF)."""
    raw = b"Action: Login\r\nUsername: ivr\r\n\r\nAction: Ping\nActionID: 7\n\n"
    parser = ActionParser()
    actions = []
    position = 0
    for cut in [*cuts, len(raw)]:
        actions += parser.feed(raw[position : position + cut])
        position += cut
    actions += parser.feed(raw[position:])
    expected = [[("Action", "Login"), ("Username", "ivr")], [("Action", "Ping"), ("ActionID", "7")]]
    assert expected == actions


def test_agi_arguments_split_like_res_agi() -> None:
    """Quotes group and disappear, `""` is an empty argument, backslash escapes."""
    expected = [
        ["STREAM", "FILE", "beep", ""],
        ["VERBOSE", "NPS survey started", "1"],
        ["SET", "VARIABLE", "X", 'a "b"'],
    ]
    actual = [
        parse_args('STREAM FILE beep ""'),
        parse_args('VERBOSE "NPS survey started" 1'),
        parse_args('SET VARIABLE X "a \\"b\\""'),
    ]
    assert expected == actual


def test_agi_commands_match_their_words_case_insensitively() -> None:
    expected = ["GET FULL VARIABLE", "GET VARIABLE", "STREAM FILE", None]
    actual = [
        find_command(["get", "full", "variable", "x"]),
        find_command(["GET", "VARIABLE", "x"]),
        find_command(["Stream", "File", "x", ""]),
        find_command(["SAY", "BANANA"]),
    ]
    assert expected == actual
