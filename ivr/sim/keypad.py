"""The caller's thumb: when keys land, and what each AGI media command makes of them.

Key presses and the hang-up live on one absolute timeline (loop seconds).
A prompt command that accepts keys takes the next `Turn` when it starts and
adds that turn's presses to the timeline, where they stay until they happen,
whichever command is running by then (facts 53 and 54). Given the timeline,
a command's outcome is a pure function of its start time, so every reply
below can be computed up front and checked without sockets:

* keys pressed before a command starts happened while no command ran: dropped;
* STREAM FILE takes only its escape digits, WAIT FOR DIGIT and GET DATA take
  any key, RECORD FILE only its escape digits, Playback none;
* a hang-up answers `-1` and loses the digits GET DATA had collected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.sim.plan import Turn

SAMPLE_RATE = 8000
RECORD_REWIND = 0.2
"""RECORD FILE rewinds 200 ms on the ending DTMF (it would hold the key's tone)."""
GETDATA_FIRST_TIMEOUT = 6.0
GETDATA_NEXT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Key:
    at: float
    digit: str


@dataclass(frozen=True)
class Outcome:
    """A media command's reply, when it is sent, and how Asterisk accounts for it.

    `code`/`result` are what AGIExecEnd reports (200/Success, or -1/Failure
    for the commands whose handler fails on a hang-up). `hung_up` is True
    when the caller's hang-up is what ended the command.
    """

    at: float
    reply: str
    code: int = 200
    result: str = "Success"
    hung_up: bool = False


def samples(seconds: float) -> int:
    return max(0, round(seconds * SAMPLE_RATE))


class Keypad:
    """The pending presses and the hang-up of one caller, on the loop's clock."""

    def __init__(self, turns: Sequence[Turn], intro: Turn | None = None) -> None:
        self._turns = list(turns)
        self._intro = intro
        self.keys: list[Key] = []
        self.hangup_at: float | None = None
        self.scheduled: list[Key] = []
        self.speech_end: float | None = None

    def take_turn(self, start: float, *, intro: bool = False) -> None:
        """A prompt that accepts keys started at `start`: the caller acts on it.

        The intro has a turn of its own (`CallPlan.intro`), taken once, so the
        survey's turns stay one per question prompt.
        """
        self.speech_end = None
        if intro and self._intro is not None:
            turn, self._intro = self._intro, None
        elif intro or not self._turns:
            return
        else:
            turn = self._turns.pop(0)
        self.speech_end = None if turn.speech is None else start + turn.speech
        for press in turn.presses:
            for index, digit in enumerate(press.keys):
                key = Key(start + press.at + index * press.gap, digit)
                self.keys.append(key)
                self.scheduled.append(key)
        if turn.hangup_at is not None:
            self.hang_up(start + turn.hangup_at)
        self.keys.sort(key=lambda k: k.at)
        self.scheduled.sort(key=lambda k: k.at)

    def hang_up(self, at: float) -> None:
        """The caller hangs up at `at` (the earliest one wins); later keys never happen."""
        if self.hangup_at is None or at < self.hangup_at:
            self.hangup_at = at
        self.keys = [k for k in self.keys if k.at < self.hangup_at]
        self.scheduled = [k for k in self.scheduled if k.at < self.hangup_at]

    def commit(self, until: float) -> None:
        """Keys up to `until` were taken or dropped by the command that ran until then."""
        self.keys = [k for k in self.keys if k.at > until]

    def drop_before(self, start: float) -> None:
        """Keys pressed while no command was running are thrown away (fact 54)."""
        self.keys = [k for k in self.keys if k.at >= start]

    def _window(self, start: float, end: float) -> list[Key]:
        return [k for k in self.keys if start <= k.at < end]

    def _hangup_before(self, end: float) -> float | None:
        return self.hangup_at if self.hangup_at is not None and self.hangup_at < end else None

    def stream_file(self, start: float, duration: float, escapes: str, offset: int = 0) -> Outcome:
        total = samples(duration)
        first = min(max(offset, 0), total)
        end = start + (total - first) / SAMPLE_RATE
        hangup = self._hangup_before(end)
        for key in self._window(start, end if hangup is None else hangup):
            if key.digit in escapes:
                position = first + samples(key.at - start)
                return Outcome(key.at, f"200 result={ord(key.digit)} endpos={position}")
        if hangup is not None:
            position = first + samples(hangup - start)
            return Outcome(hangup, f"200 result=-1 endpos={position}", -1, "Failure", True)
        return Outcome(end, f"200 result=0 endpos={total}")

    def wait_for_digit(self, start: float, timeout_ms: int) -> Outcome:
        end = math.inf if timeout_ms < 0 else start + timeout_ms / 1000
        hangup = self._hangup_before(end)
        window = self._window(start, end if hangup is None else hangup)
        if window:
            return Outcome(window[0].at, f"200 result={ord(window[0].digit)}")
        if hangup is not None:
            return Outcome(hangup, "200 result=-1", -1, "Failure", True)
        return Outcome(end, "200 result=0")

    def get_data(self, start: float, duration: float, timeout_ms: int, max_digits: int) -> Outcome:
        """ast_app_getdata: the prompt is interrupted by any key, `#` ends, timeouts per digit."""
        if timeout_ms > 0:
            first_timeout = next_timeout = timeout_ms / 1000
        elif timeout_ms < 0:
            first_timeout = next_timeout = math.inf
        else:
            first_timeout, next_timeout = GETDATA_FIRST_TIMEOUT, GETDATA_NEXT_TIMEOUT
        digits = ""
        prompt_end = start + duration
        deadline = prompt_end + first_timeout
        for key in self._window(start, math.inf):
            if key.at >= deadline:
                break
            if self.hangup_at is not None and self.hangup_at <= key.at:
                break
            if key.digit == "#":
                return Outcome(key.at, f"200 result={digits}")
            digits += key.digit
            if len(digits) >= max_digits:
                return Outcome(key.at, f"200 result={digits}")
            deadline = key.at + next_timeout
        hangup = self._hangup_before(deadline)
        if hangup is not None:
            return Outcome(hangup, "200 result=-1", hung_up=True)
        return Outcome(deadline, f"200 result={digits} (timeout)")

    def record_file(
        self, start: float, beep: float, escapes: str, timeout_ms: int, silence: int = 0
    ) -> Outcome:
        """res_agi's handle_recordfile: the beep, then audio until an escape
        digit (rewound 200 ms), a hang-up, `timeout_ms`, or (`silence` > 0) that
        many seconds of silence, after which the file is cut back to keep one
        second of it (`ast_stream_rewind(fs, silence - 1000)`)."""
        audio = start + beep
        end = math.inf if timeout_ms < 0 else audio + timeout_ms / 1000
        quiet_from = None
        if silence > 0 and self.speech_end is not None:
            quiet_from = max(audio, self.speech_end)
            if quiet_from + silence < end:
                end = quiet_from + silence
            else:
                quiet_from = None
        hangup = self._hangup_before(end)
        for key in self._window(audio, end if hangup is None else hangup):
            if key.digit in escapes:
                position = samples(key.at - audio - RECORD_REWIND)
                return Outcome(key.at, f"200 result={ord(key.digit)} (dtmf) endpos={position}")
        if hangup is not None:
            position = samples(max(0.0, hangup - audio))
            return Outcome(hangup, f"200 result=-1 (hangup) endpos={position}", -1, "Failure", True)
        if quiet_from is not None:
            kept = samples(min(quiet_from - audio + 1.0, end - audio))
            return Outcome(end, f"200 result=0 (timeout) endpos={kept}")
        return Outcome(end, f"200 result=0 (timeout) endpos={samples(timeout_ms / 1000)}")

    def playback(self, start: float, duration: float) -> Outcome:
        end = start + duration
        hangup = self._hangup_before(end)
        if hangup is not None:
            return Outcome(hangup, "200 result=-1", hung_up=True)
        return Outcome(end, "200 result=0")

    def pause(self, start: float, seconds: float) -> Outcome:
        return self.playback(start, seconds)
