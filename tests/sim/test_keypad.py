"""The caller's keypad on one timeline: which command gets which key (facts 21, 53, 54)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.sim.keypad import Keypad, Outcome
from ivr.sim.plan import Press, Turn


def test_stream_file_takes_only_its_escape_digits() -> None:
    """A key outside the escape set is dropped; the next escape digit ends the prompt."""
    keypad = Keypad([Turn((Press("51", at=0.1, gap=0.1),))])
    keypad.take_turn(10.0)
    expected = Outcome(10.2, "200 result=49 endpos=1600")
    assert expected == keypad.stream_file(10.0, 1.0, "0123")


def test_stream_file_played_out_reports_the_whole_file_in_samples() -> None:
    """`200 result=0 endpos=N` with N the file's length at 8 kHz (3404 for the captured beep)."""
    keypad = Keypad([])
    assert Outcome(10.4255, "200 result=0 endpos=3404") == keypad.stream_file(10.0, 0.4255, "")


def test_keys_pressed_while_no_command_runs_are_thrown_away() -> None:
    """Fact 54: the next WAIT FOR DIGIT does not see a key pressed between commands."""
    keypad = Keypad([Turn.keys("7", at=0.5)])
    keypad.take_turn(0.0)
    played = keypad.stream_file(0.0, 0.2, "")
    keypad.commit(played.at)
    keypad.drop_before(1.0)
    assert Outcome(1.1, "200 result=0") == keypad.wait_for_digit(1.0, 100)


def test_presses_keep_their_timeline_across_commands() -> None:
    """`1` at 0.3 s interrupts STREAM FILE, `0` at 0.45 s lands in the WAIT FOR DIGIT after it."""
    keypad = Keypad([Turn((Press("1", at=0.3), Press("0", at=0.45)))])
    keypad.take_turn(0.0)
    first = keypad.stream_file(0.0, 1.0, "0123456789")
    keypad.commit(first.at)
    keypad.drop_before(0.31)
    second = keypad.wait_for_digit(0.31, 1000)
    assert [Outcome(0.3, "200 result=49 endpos=2400"), Outcome(0.45, "200 result=48")] == [
        first,
        second,
    ]


def test_get_data_timeout_keeps_typed_digits_and_says_timeout() -> None:
    """`9` then nothing: `200 result=9 (timeout)`; no input at all: `200 result= (timeout)`."""
    typed = Keypad([Turn.keys("9", at=1.2)])
    typed.take_turn(0.0)
    silent = Keypad([Turn.silence()])
    silent.take_turn(0.0)
    expected = [Outcome(6.2, "200 result=9 (timeout)"), Outcome(2.0, "200 result= (timeout)")]
    assert expected == [typed.get_data(0.0, 0.9, 5000, 2), silent.get_data(0.0, 0.5, 1500, 2)]


def test_get_data_ends_on_hash_or_max_digits_and_hash_is_not_returned() -> None:
    hashed = Keypad([Turn.keys("7#", at=0.5, gap=0.2)])
    hashed.take_turn(0.0)
    ten = Keypad([Turn.keys("10", at=0.05, gap=0.3)])
    ten.take_turn(0.0)
    expected = [Outcome(0.7, "200 result=7"), Outcome(0.35, "200 result=10")]
    assert expected == [hashed.get_data(0.0, 0.4, 5000, 3), ten.get_data(0.0, 0.4, 5000, 2)]


def test_hangup_during_get_data_loses_the_digits_already_typed() -> None:
    """Fact 53: `200 result=-1`, not the partial input; GET DATA still counts as Success."""
    keypad = Keypad([Turn((Press("1", at=0.1),), hangup_at=0.3)])
    keypad.take_turn(0.0)
    assert Outcome(0.3, "200 result=-1", hung_up=True) == keypad.get_data(0.0, 0.2, 5000, 2)


def test_hangup_during_stream_file_fails_the_command() -> None:
    """Fact 55: a STREAM FILE cut by a hang-up is ResultCode -1, Result Failure."""
    keypad = Keypad([Turn.hangup(at=0.25)])
    keypad.take_turn(0.0)
    expected = Outcome(0.25, "200 result=-1 endpos=2000", -1, "Failure", hung_up=True)
    assert expected == keypad.stream_file(0.0, 1.0, "0123456789")


def test_record_file_stops_on_its_escape_digit_or_times_out() -> None:
    """`(dtmf) endpos=` rewinds 200 ms of the key's tone; a timeout records exactly timeout ms."""
    stopped = Keypad([Turn.keys("#", at=2.5)])
    stopped.take_turn(0.0)
    timed = Keypad([])
    expected = [
        Outcome(2.5, "200 result=35 (dtmf) endpos=15040"),
        Outcome(2.0, "200 result=0 (timeout) endpos=16000"),
    ]
    assert expected == [
        stopped.record_file(0.42, 0.0, "#", 10000),
        timed.record_file(0.0, 0.0, "#", 2000),
    ]


def test_keys_after_the_hangup_never_happen() -> None:
    keypad = Keypad([Turn((Press("123", at=0.1, gap=0.1),), hangup_at=0.25)])
    keypad.take_turn(0.0)
    assert ["1", "2"] == [key.digit for key in keypad.scheduled]


@given(
    presses=st.lists(st.tuples(st.sampled_from("0123456789#"), st.floats(0.0, 3.0)), max_size=6),
    hangup=st.floats(0.0, 3.0),
)
def test_a_hung_up_get_data_never_returns_digits(
    presses: list[tuple[str, float]], hangup: float
) -> None:
    """Whatever was typed, a GET DATA that ends in the hang-up answers `200 result=-1`."""
    turn = Turn(tuple(Press(key, at) for key, at in presses), hangup_at=hangup)
    keypad = Keypad([turn])
    keypad.take_turn(0.0)
    outcome = keypad.get_data(0.0, 0.5, 1000, 3)
    assert outcome.hung_up == (outcome.reply == "200 result=-1")
    assert outcome.at <= max(hangup, 0.0) + 1e-9 or not outcome.hung_up


def test_record_file_ends_on_silence_keeping_one_second_of_it() -> None:
    """`s=3`: 3 s of silence after the speech end it, the file cut back to keep 1 s of it.

    The caller talks until 2.0 s after the command started, 1.5 s after the beep.
    """
    keypad = Keypad([Turn.speaks(2.0)])
    keypad.take_turn(0.0)
    expected = Outcome(2.0 + 3.0, "200 result=0 (timeout) endpos=20000")
    assert expected == keypad.record_file(0.0, 0.5, "#", 60000, silence=3)


def test_record_file_without_silence_detection_ignores_the_pause() -> None:
    """No `s=`: only the time limit, a key or a hang-up ends the recording."""
    keypad = Keypad([Turn.speaks(0.5)])
    keypad.take_turn(0.0)
    expected = Outcome(2.0, "200 result=0 (timeout) endpos=16000")
    assert expected == keypad.record_file(0.0, 0.0, "#", 2000)


def test_record_file_cut_by_a_hang_up_reports_what_was_recorded() -> None:
    """`(hangup) endpos=` counts the samples written before the caller left."""
    keypad = Keypad([Turn.hangup(at=1.75)])
    keypad.take_turn(0.0)
    expected = Outcome(1.75, "200 result=-1 (hangup) endpos=10000", -1, "Failure", True)
    assert expected == keypad.record_file(0.0, 0.5, "#", 60000, silence=3)


def test_record_file_keys_are_timed_from_the_command_start() -> None:
    """A RECORD FILE takes the caller's next turn like any prompt that accepts keys."""
    keypad = Keypad([Turn.keys("#", at=1.7)])
    keypad.take_turn(0.0)
    expected = Outcome(1.7, "200 result=35 (dtmf) endpos=8000")
    assert expected == keypad.record_file(0.0, 0.5, "#", 60000, silence=3)
