"""What one simulated call does: the caller, the queue, the agents, the keypad.

A plan is a frozen value so that a test can state a whole call in one
expression and the simulator can replay it without asking anything back.
Times in `Turn`/`Press` are wall-clock seconds after the prompt that consumed
the turn started; `hold_seconds`/`talk_seconds` are the values Asterisk will
*report* (the replay compresses them by the PBX's `time_scale`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

DTMF_DIGITS = frozenset("0123456789*#ABCD")
CALLER_KINDS = frozenset({"local", "pjsip"})
_LOCAL_INTERFACE = re.compile(r"^Local/(?P<exten>[^@/]+)@(?P<context>[^/]+)(?:/.*)?$")
_OTHER_INTERFACE = re.compile(r"^(?P<tech>[A-Za-z0-9_]+)/(?P<resource>[^/]+)$")


@dataclass(frozen=True)
class Agent:
    """A queue member as configured in queues.conf (`member => interface,0,name`)."""

    name: str
    interface: str

    def __post_init__(self) -> None:
        if not (_LOCAL_INTERFACE.match(self.interface) or _OTHER_INTERFACE.match(self.interface)):
            raise ValueError(
                f"agent interface {self.interface!r} is neither Local/exten@context[/opts] "
                "nor TECH/resource"
            )

    @property
    def is_local(self) -> bool:
        """Local members make a ;1/;2 pair of channels, other technologies one channel."""
        return _LOCAL_INTERFACE.match(self.interface) is not None

    @property
    def stem(self) -> str:
        """Channel names are `<stem>-<8 hex>` (plus `;1`/`;2` for Local)."""
        local = _LOCAL_INTERFACE.match(self.interface)
        if local:
            return f"Local/{local['exten']}@{local['context']}"
        return self.interface

    @property
    def exten(self) -> str:
        """The extension the member's channel shows in `Exten` and CDR `Destination`."""
        local = _LOCAL_INTERFACE.match(self.interface)
        if local:
            return local["exten"]
        other = _OTHER_INTERFACE.match(self.interface)
        assert other is not None
        return other["resource"]

    @property
    def dialed_peer(self) -> str:
        """`DIALEDPEERNUMBER`: the interface without its technology prefix."""
        return self.interface.split("/", 1)[1]


@dataclass(frozen=True)
class Press:
    """Keys typed one after another, the first `at` seconds after the prompt started."""

    keys: str
    at: float
    gap: float = 0.15

    def __post_init__(self) -> None:
        unknown = set(self.keys) - DTMF_DIGITS
        if unknown:
            raise ValueError(f"not DTMF keys: {sorted(unknown)}")
        if self.at < 0 or self.gap < 0:
            raise ValueError("press times must not be negative")


@dataclass(frozen=True)
class Turn:
    """What the caller does from the moment one prompt starts (see `CallPlan.survey`).

    `speech` is for a RECORD FILE turn: the caller talks that many seconds from
    the command's start, then is silent (what `s=` silence detection hears).
    None means sound throughout, like the lab's Music-on-Hold caller.
    """

    presses: tuple[Press, ...] = ()
    hangup_at: float | None = None
    speech: float | None = None

    @classmethod
    def keys(cls, keys: str, at: float = 0.05, gap: float = 0.15) -> Turn:
        return cls((Press(keys, at, gap),))

    @classmethod
    def silence(cls) -> Turn:
        return cls()

    @classmethod
    def hangup(cls, at: float = 0.05) -> Turn:
        return cls(hangup_at=at)

    @classmethod
    def speaks(cls, seconds: float) -> Turn:
        """Talks `seconds` into a recording, then falls silent."""
        return cls(speech=seconds)


class Flow(enum.StrEnum):
    """Which captured call the simulator replays (see `ivr.sim.templates`)."""

    ANSWERED = "answered"
    ABANDON_IN_QUEUE = "abandon_in_queue"
    CALLER_HANGS_UP_BRIDGED = "caller_hangs_up_bridged"
    BLIND_TRANSFER = "blind_transfer"
    ATTENDED_TRANSFER = "attended_transfer"
    ATTENDED_TRANSFER_DIRECT = "attended_transfer_direct"


TRANSFER_FLOWS = frozenset(
    {Flow.BLIND_TRANSFER, Flow.ATTENDED_TRANSFER, Flow.ATTENDED_TRANSFER_DIRECT}
)
DEFAULT_AGENTS = (
    Agent("Agent One", "Local/agent1@agents/n"),
    Agent("Agent Two", "Local/agent2@agents/n"),
)


@dataclass(frozen=True)
class CallPlan:
    """One call, from the caller dialling in to the last AMI event.

    `survey` is consumed one `Turn` per prompt that accepts keys (STREAM FILE
    with escape digits, GET DATA, RECORD FILE); after the last turn the caller is silent
    and stays on the line. The survey's intro (a prompt named `intro...`) takes
    `intro` instead: by default the caller listens to it, as most callers do.
    `agi_args` None means `${CHANNEL(linkedid)}`, as in the transfer captures.
    `agents[0]` answers first; transfers go to `agents[1]`.
    """

    queue: str = "support"
    agents: tuple[Agent, ...] = DEFAULT_AGENTS
    transfer_queue: str = "sales"
    flow: Flow = Flow.ANSWERED
    caller_number: str = "+15550001111"
    caller_name: str = "Customer"
    caller_kind: str = "local"
    language: str = "en"
    hold_seconds: int = 1
    talk_seconds: int = 3
    set_vars: bool = True
    survey: tuple[Turn, ...] = ()
    intro: Turn = Turn()
    agi_args: tuple[str, ...] | None = None
    agent_leg_survey: bool = False

    def __post_init__(self) -> None:
        if self.caller_kind not in CALLER_KINDS:
            raise ValueError(f"caller_kind must be one of {sorted(CALLER_KINDS)}")
        needed = 2 if self.flow in TRANSFER_FLOWS else 1
        if len(self.agents) < needed:
            raise ValueError(f"flow {self.flow.value} needs {needed} agent(s)")
        if self.hold_seconds < 0 or self.talk_seconds < 0:
            raise ValueError("hold_seconds and talk_seconds must not be negative")
        if not self.queue or not self.transfer_queue:
            raise ValueError("queue names must not be empty")
