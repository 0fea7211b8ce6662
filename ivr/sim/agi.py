"""The FastAGI half of the simulated Asterisk: it connects to the service and obeys it.

Behaviour follows the lab captures (facts 20-24, 52-55) and, where they are
silent, Asterisk's res_agi.c as remembered (each such place says "guess"):

* the env block, then one LF-terminated reply per command;
* `HANGUP` once, before the reply to the next command, after a hang-up
  during a command, the AGI HANGUP command or a restart - or at once when
  no command is running; it is also sent on its own 40 ms later if no
  command comes (as in fact 46's restart capture);
* after that, only the dead-channel-capable commands (GET/SET VARIABLE,
  GET FULL VARIABLE, VERBOSE, EXEC, NOOP) run; the others answer 511;
* the socket stays open until the service closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from ivr.sim.keypad import Keypad, Outcome

NOTICE_DELAY = 0.04
DEAD = "Command Not Permitted on a dead channel or intercept routine"
UNKNOWN = "Invalid or unknown command"


@dataclass(frozen=True)
class AgiLine:
    """One line of the FastAGI conversation (`at`: seconds since the connection opened)."""

    sent_by_service: bool
    text: str
    at: float


class AgiHooks(Protocol):
    """What a FastAGI session makes happen on the rest of the PBX (AMI events, variables)."""

    def exec_start(self, command: str, command_id: int) -> None: ...

    def exec_end(self, command: str, command_id: int, code: int, result: str) -> None: ...

    def dtmf(self, digit: str) -> None: ...

    def set_variable(self, name: str, value: str) -> None: ...

    def get_variable(self, name: str) -> str | None: ...

    def full_variable(self, expression: str) -> str: ...

    def channel_name(self) -> str: ...

    def caller_hangup(self, idle: bool) -> None: ...

    def restart_hangup(self) -> None: ...

    def hangup_command(self) -> None: ...


@dataclass(frozen=True)
class Prompts:
    """How long each sound file plays (wall seconds) and which ones are missing."""

    default: float = 0.2
    durations: Mapping[str, float] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()

    def duration(self, name: str) -> float:
        return self.durations.get(name, self.default)

    def exists(self, name: str) -> bool:
        return name not in self.missing


@dataclass
class AgiOutcome:
    """How the session ended.

    `hangup_reason` is "caller", "command" (AGI HANGUP) or "restart" when the
    channel was hung up during the session, else None.
    """

    lines: list[AgiLine] = field(default_factory=list)
    closed_by_service: bool = False
    hangup_reason: str | None = None
    timed_out: bool = False


def parse_args(line: str) -> list[str]:
    """res_agi.c `parse_args`: blanks split, `"` toggles quoting, `\\` escapes one character."""
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
                args.append("")
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                args[-1] = "".join(current)
            current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            current = []
            args.append("")
        current.append(char)
        escaped = False
    if current is not None:
        args[-1] = "".join(current)
    return args


# Usage texts: the <para> lines of res_agi.c's XML documentation, with their
# markup left in, as a real 520 block was observed to carry it. Guess: the
# exact wording for Asterisk 22 was not captured.
USAGE: Mapping[str, str] = MappingProxyType(
    {
        "ANSWER": (
            "Answers channel if not already in answer state. Returns <literal>-1</literal> "
            "on channel failure, or <literal>0</literal> if successful."
        ),
        "EXEC": (
            "Executes <replaceable>application</replaceable> with given "
            "<replaceable>options</replaceable>.\nReturns whatever the "
            "<replaceable>application</replaceable> returns, or <literal>-2</literal> on "
            "failure to find <replaceable>application</replaceable>."
        ),
        "GET DATA": (
            "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
            "Returns the digits received from the channel at the other end."
        ),
        "GET FULL VARIABLE": (
            "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not "
            "set or channel does not exist. Returns <literal>1</literal> if "
            "<replaceable>variablename</replaceable> is set and returns the variable in "
            "parenthesis. Understands complex variable names and builtin variables, unlike "
            "GET VARIABLE.\nExample return code: 200 result=1 (testvariable)"
        ),
        "GET VARIABLE": (
            "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not "
            "set. Returns <literal>1</literal> if <replaceable>variablename</replaceable> is "
            "set and returns the variable in parentheses.\nExample return code: 200 result=1 "
            "(testvariable)"
        ),
        "HANGUP": (
            "Hangs up the specified channel. If no channel name is given, hangs up the "
            "current channel"
        ),
        "NOOP": "Does nothing.",
        "RECORD FILE": (
            "Record to a file until a given dtmf digit in the sequence is received. Returns "
            "<literal>-1</literal> on hangup or error.  The format will specify what kind of "
            "file will be recorded. The <replaceable>timeout</replaceable> is the maximum "
            "record time in milliseconds, or <literal>-1</literal> for no "
            "<replaceable>timeout</replaceable>. <replaceable>offset samples</replaceable> is "
            "optional, and, if provided, will seek to the offset without exceeding the end of "
            "the file. <replaceable>silence</replaceable> is the number of seconds of silence "
            "allowed before the function returns despite the lack of dtmf digits or reaching "
            "<replaceable>timeout</replaceable>. <replaceable>silence</replaceable> value must "
            "be preceded by <literal>s=</literal> and is also optional."
        ),
        "SET VARIABLE": "Sets a variable to the current channel.",
        "STREAM FILE": (
            "Send the given file, allowing playback to be interrupted by the given digits, if "
            "any. Returns <literal>0</literal> if playback completes without a digit being "
            "pressed, or the ASCII numerical value of the digit if one was pressed, or "
            "<literal>-1</literal> on error or if the channel was disconnected. If musiconhold "
            "is playing before calling stream file it will be automatically stopped and will "
            "not be restarted after completion."
        ),
        "VERBOSE": (
            "Sends <replaceable>message</replaceable> to the console via verbose message "
            "system. <replaceable>level</replaceable> is the verbose level (1-4).\nAlways "
            "returns <literal>1</literal>"
        ),
        "WAIT FOR DIGIT": (
            "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to "
            "receive a DTMF digit. Returns <literal>-1</literal> on channel failure, "
            "<literal>0</literal> if no digit is received in the timeout, or the numerical "
            "value of the ascii of the digit if one is received. Use <literal>-1</literal> "
            "for the <replaceable>timeout</replaceable> value if you desire the call to block "
            "indefinitely."
        ),
    }
)
# res_agi.c's `dead` column: commands that still run after the hang-up.
DEAD_CAPABLE = frozenset(
    {"EXEC", "GET FULL VARIABLE", "GET VARIABLE", "NOOP", "SET VARIABLE", "VERBOSE"}
)
COMMANDS = tuple(sorted(USAGE, key=lambda name: -len(name.split())))


class Usage(Exception):
    """The arguments do not fit the command (res_agi answers with the 520 usage block)."""


def find_command(args: Sequence[str]) -> str | None:
    """res_agi `find_command`: the command whose words start the line, case-insensitively."""
    words = [a.upper() for a in args]
    for name in COMMANDS:
        parts = name.split()
        if words[: len(parts)] == parts:
            return name
    return None


def _is_intro(file: str) -> bool:
    """The survey's intro prompts (`ivr-survey/intro`, `ivr-survey/intro-general`)."""
    return file.rsplit("/", 1)[-1].startswith("intro")


def _int_arg(value: str) -> int:
    try:
        return int(value)
    except ValueError as error:
        raise Usage from error


class AgiSession:
    """One FastAGI connection from the simulated channel to the service."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        env: Sequence[tuple[str, str]],
        keypad: Keypad,
        hooks: AgiHooks,
        prompts: Prompts,
        limit: float,
        rng: random.Random,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._env = env
        self._keypad = keypad
        self._hooks = hooks
        self._prompts = prompts
        self._limit = limit
        self._rng = rng
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self.outcome = AgiOutcome()
        self._dead = False
        self._notice_pending = False
        self._running = False
        self._changed = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._stop = asyncio.Event()
        self._closed_by_sim = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def hung_up(self) -> bool:
        return self.outcome.hangup_reason is not None

    async def run(self) -> AgiOutcome:
        for key, value in self._env:
            self._send(f"{key}: {value}")
        self._send("")
        caller = asyncio.create_task(self._caller())
        serve = asyncio.create_task(self._serve())
        stopper = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {serve, stopper}, timeout=self._limit, return_when=asyncio.FIRST_COMPLETED
            )
            if serve not in done:
                self.outcome.timed_out = stopper not in done
                self._closed_by_sim = True
                serve.cancel()
                await asyncio.gather(serve, return_exceptions=True)
            else:
                serve.result()
        finally:
            for task in (caller, stopper, *self._tasks):
                task.cancel()
            await asyncio.gather(caller, stopper, *self._tasks, return_exceptions=True)
            self._writer.close()
        return self.outcome

    def restart(self, deadline: float) -> None:
        """`core restart now`: hang the channel up now, give the service until `deadline`."""
        self._loop.call_at(deadline, self._stop.set)
        if self.hung_up:
            return
        if self._running:
            self._interrupt.set()
        else:
            self.outcome.hangup_reason = "restart"
            self._hooks.restart_hangup()
            self._notice()

    def close(self) -> None:
        """The simulator gives up on the session (PBX stopping)."""
        self._stop.set()

    def _send(self, text: str) -> None:
        self.outcome.lines.append(AgiLine(False, text, self._loop.time() - self._started))
        if not self._writer.is_closing():
            self._writer.write(text.encode() + b"\n")

    def _notice(self) -> None:
        self._notice_pending = False
        self._dead = True
        self._send("HANGUP")

    def _notice_later(self) -> None:
        self._notice_pending = True

        async def later() -> None:
            await asyncio.sleep(NOTICE_DELAY)
            if self._notice_pending:
                self._notice()

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self) -> None:
        while True:
            raw = await self._reader.readline()
            if not raw:
                self.outcome.closed_by_service = not self._closed_by_sim
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.outcome.lines.append(AgiLine(True, line, self._loop.time() - self._started))
            await self._handle(line)

    async def _caller(self) -> None:
        """The caller's side of the clock: key presses reach AMI, an idle hang-up is noticed."""
        while True:
            now = self._loop.time()
            self._flush_keys(now)
            hangup = self._keypad.hangup_at
            if hangup is not None and hangup <= now and not self.hung_up and not self._running:
                self.outcome.hangup_reason = "caller"
                self._hooks.caller_hangup(idle=True)
                self._notice()
            times = [k.at for k in self._keypad.scheduled]
            if hangup is not None and hangup > now and not self.hung_up:
                times.append(hangup)
            self._changed.clear()
            wait = max(0.0, min(times) - now) if times else None
            if wait is None:
                await self._changed.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)

    def _flush_keys(self, until: float) -> None:
        scheduled = self._keypad.scheduled
        while scheduled and scheduled[0].at <= until:
            self._hooks.dtmf(scheduled.pop(0).digit)

    async def _handle(self, line: str) -> None:
        start = self._loop.time()
        hangup = self._keypad.hangup_at
        if hangup is not None and hangup <= start and not self.hung_up:
            self.outcome.hangup_reason = "caller"
            self._hooks.caller_hangup(idle=True)
            self._notice()
        if self._notice_pending:
            self._notice()
        self._keypad.drop_before(start)
        args = parse_args(line)
        command_id = self._rng.randrange(1 << 31)
        self._hooks.exec_start(line, command_id)
        name = find_command(args)
        if name is None:
            self._send(f"510 {UNKNOWN}")
            self._hooks.exec_end(line, command_id, 510, UNKNOWN)
            return
        if self._dead and name not in DEAD_CAPABLE:
            self._send(f"511 {DEAD}")
            self._hooks.exec_end(line, command_id, 511, DEAD)
            return
        try:
            await self._run(name, args[len(name.split()) :], line, command_id, start)
        except Usage:
            self._hooks.exec_end(line, command_id, 520, "Usage")
            self._send("520-Invalid command syntax.  Proper usage follows:")
            for usage_line in USAGE[name].split("\n"):
                self._send(usage_line)
            self._send("520 End of proper usage.")

    async def _run(
        self, name: str, args: list[str], line: str, command_id: int, start: float
    ) -> None:
        media = self._media_plan(name, args, start)
        if media is None:
            reply, code, result = self._instant(name, args)
            self._send(reply)
            self._hooks.exec_end(line, command_id, code, result)
            return
        outcome = await self._play(media)
        self._send(outcome.reply)
        self._hooks.exec_end(line, command_id, outcome.code, outcome.result)

    def _instant(self, name: str, args: list[str]) -> tuple[str, int, str]:
        ok = (200, "Success")
        if name == "ANSWER":
            return ("200 result=0", *ok)
        if name == "NOOP":
            return ("200 result=0", *ok)
        if name == "VERBOSE":
            if not args or (len(args) > 1 and not args[1].lstrip("-").isdigit()):
                raise Usage
            return ("200 result=1", *ok)
        if name == "SET VARIABLE":
            if len(args) != 2:
                raise Usage
            self._hooks.set_variable(args[0], args[1])
            return ("200 result=1", *ok)
        if name == "GET VARIABLE":
            if len(args) != 1:
                raise Usage
            value = self._hooks.get_variable(args[0])
            return ("200 result=0" if value is None else f"200 result=1 ({value})", *ok)
        if name == "GET FULL VARIABLE":
            if len(args) not in (1, 2):
                raise Usage
            if len(args) == 2 and args[1] != self._hooks.channel_name():
                return ("200 result=0", *ok)
            return (f"200 result=1 ({self._hooks.full_variable(args[0])})", *ok)
        if name == "HANGUP":
            if len(args) > 1:
                raise Usage
            if args and args[0] != self._hooks.channel_name():
                return ("200 result=-1", *ok)
            if not self.hung_up:
                self.outcome.hangup_reason = "command"
                self._hooks.hangup_command()
                self._notice_later()
            return ("200 result=1", *ok)
        if name == "EXEC":
            if not args:
                raise Usage
            return ("200 result=-1" if self._dead else "200 result=0", *ok)
        raise Usage

    def _media_plan(self, name: str, args: list[str], start: float) -> Callable[[], Outcome] | None:
        """The pure outcome of a media command, or None for a command that answers at once."""
        keypad = self._keypad
        if name == "STREAM FILE":
            if len(args) not in (2, 3):
                raise Usage
            offset = _int_arg(args[2]) if len(args) == 3 else 0
            file, escapes = args[0], args[1]
            if not self._prompts.exists(file):
                return lambda: Outcome(start, "200 result=-1 endpos=0", -1, "Failure")
            if escapes:
                keypad.take_turn(start, intro=_is_intro(file))
            duration = self._prompts.duration(file)
            return lambda: keypad.stream_file(start, duration, escapes, offset)
        if name == "WAIT FOR DIGIT":
            if len(args) != 1:
                raise Usage
            timeout = _int_arg(args[0])
            return lambda: keypad.wait_for_digit(start, timeout)
        if name == "GET DATA":
            if not args:
                raise Usage
            timeout = _int_arg(args[1]) if len(args) > 1 else 0
            max_digits = _int_arg(args[2]) if len(args) > 2 else 1024
            if not self._prompts.exists(args[0]):
                return lambda: Outcome(start, "200 result=-1")
            keypad.take_turn(start)
            duration = self._prompts.duration(args[0])
            return lambda: keypad.get_data(start, duration, timeout, max_digits)
        if name == "RECORD FILE":
            if len(args) < 4:
                raise Usage
            timeout = _int_arg(args[3])
            beep = self._prompts.duration("beep") if record_beeps(args) else 0.0
            escapes = args[2]
            silence = record_silence(args)
            keypad.take_turn(start)
            return lambda: keypad.record_file(start, beep, escapes, timeout, silence)
        if name == "EXEC" and args and not self._dead:
            return self._exec_plan(args[0].lower(), args[1] if len(args) > 1 else "", start)
        return None

    def _exec_plan(self, app: str, data: str, start: float) -> Callable[[], Outcome] | None:
        """EXEC of what a survey plays; any other application returns 0 at once (guess)."""
        keypad = self._keypad
        if app in ("playback", "background"):
            files = [f for f in data.split(",", 1)[0].split("&") if f]
            seconds = sum(self._prompts.duration(f) for f in files if self._prompts.exists(f))
            return lambda: keypad.playback(start, seconds)
        if app == "wait":
            try:
                seconds = max(0.0, float(data or "0"))
            except ValueError:
                seconds = 0.0
            return lambda: keypad.pause(start, seconds)
        if app == "set" and "=" in data:
            name, _, value = data.partition("=")
            self._hooks.set_variable(name, value)
        return None

    async def _play(self, plan: Callable[[], Outcome]) -> Outcome:
        self._running = True
        self._changed.set()
        try:
            outcome = plan()
            interrupted = await self._sleep_until(outcome.at)
            if interrupted:
                self._keypad.hang_up(self._loop.time())
                outcome = plan()
            self._flush_keys(outcome.at)
            if interrupted:
                self.outcome.hangup_reason = "restart"
                self._hooks.restart_hangup()
                self._notice_later()
            elif outcome.hung_up:
                self.outcome.hangup_reason = "caller"
                self._hooks.caller_hangup(idle=False)
                self._notice_later()
            self._keypad.commit(outcome.at)
            return outcome
        finally:
            self._running = False
            self._changed.set()

    async def _sleep_until(self, at: float) -> bool:
        """Wait for the command to end; True if a restart cut it short."""
        delay = at - self._loop.time()
        if delay <= 0:
            return self._interrupt.is_set()
        timeout = None if math.isinf(delay) else delay
        try:
            await asyncio.wait_for(self._interrupt.wait(), timeout)
        except TimeoutError:
            return False
        return True


def record_beeps(args: Sequence[str]) -> bool:
    """res_agi: a 5th argument that is neither a sample offset nor `x=y`, or any
    6th argument without `=`, plays the beep (RECORD FILE f wav "#" 10000 0 BEEP)."""
    if len(args) > 4 and not args[4].lstrip("-").isdigit() and "=" not in args[4]:
        return True
    return len(args) > 5 and "=" not in args[5]


def record_silence(args: Sequence[str]) -> int:
    """Seconds of `s=N` among the 5th to 7th arguments (res_agi's strchr for 's'), 0 if none."""
    for arg in args[4:7]:
        found = arg.find("s")
        if found >= 0:
            text = arg[found:]
            digits = text[2:]
            return int(digits) if text.startswith("s=") and digits.isdigit() else 0
    return 0


async def connect(
    host: str, port: int, timeout: float = 2.0, *, source: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """res_agi's FastAGI connect (MAX_AGI_CONNECT 2 s); None means AGISTATUS=FAILURE.

    `source` is the address the connection comes from: the PBX host's own
    address, which is how the service tells several PBXs apart.
    """
    local = (source, 0) if source is not None else None
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout
        )
    except (OSError, TimeoutError):
        return None
