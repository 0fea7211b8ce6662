"""A simulated Asterisk 22 that the real service talks to over TCP (AMI and FastAGI).

It listens for AMI clients, places calls from `CallPlan`s by replaying the
lab captures, connects to the service's FastAGI port for each survey, and
can be made to misbehave the way a real PBX does: dropped AMI connections,
a half-open socket, a `core restart now`, AMI writes cut mid-character.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType

from ivr.sim.agi import AgiLine, Prompts
from ivr.sim.ami import ALL, AmiAccount, AmiServer
from ivr.sim.call import Call, CallResult, CallSettings
from ivr.sim.clock import CallClock
from ivr.sim.plan import TRANSFER_FLOWS, Agent, CallPlan
from ivr.sim.state import PbxState
from ivr.sim.templates import TemplateLibrary
from ivr.sim.wire import privilege_mask

__all__ = ["ALL", "AgiLine", "AmiAccount", "CallResult", "SimulatedPbx"]

_NO_DURATIONS: Mapping[str, float] = MappingProxyType({})
_NO_QUEUES: Mapping[str, Sequence[Agent]] = MappingProxyType({})
SHUTDOWN_WAIT = 16.2
"""Seconds Asterisk waited for a FastAGI socket left open before restarting (fact 47)."""


def _grace_for(time_scale: float) -> float:
    """Asterisk's wait for open FastAGI sockets, compressed like the call but never below 0.5 s."""
    return max(0.5, SHUTDOWN_WAIT * time_scale)


class SimulatedPbx:
    """One simulated Asterisk. Start it, point the service at `ami_port`, place calls.

    `time_scale` compresses the replayed call (hold, talk and the captured
    gaps); prompts and key presses of the survey run in real time.
    `restart_grace` bounds how long a restart waits for FastAGI sockets the
    service keeps open (default: Asterisk's 16.2 s times `time_scale`, at
    least 0.5 s); `restart_downtime` is how long the AMI port refuses
    connections while "Asterisk" re-executes. `queues` pre-configures queue
    members so QueueStatus lists them before any call. `agi_source` is the
    address FastAGI connections come from (any 127.x works on Linux), so
    several simulated PBXs can look like separate hosts to the service.
    """

    def __init__(
        self,
        *,
        name: str = "sim",
        accounts: Sequence[AmiAccount] = (AmiAccount("ivr", "secret"),),
        agi_host: str = "127.0.0.1",
        agi_port: int = 4573,
        agi_source: str | None = None,
        time_scale: float = 0.01,
        prompt_seconds: float = 0.2,
        prompt_durations: Mapping[str, float] = _NO_DURATIONS,
        missing_prompts: frozenset[str] = frozenset(),
        ami_chunk_size: int | None = None,
        uptime: int = 144,
        login_failure_delay: float = 1.0,
        agi_session_limit: float = 60.0,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        ami_port: int = 0,
        queues: Mapping[str, Sequence[Agent]] = _NO_QUEUES,
        restart_grace: float | None = None,
        restart_downtime: float = 0.2,
        seed: int | None = None,
        templates: TemplateLibrary | None = None,
    ) -> None:
        if ami_chunk_size is not None and ami_chunk_size < 1:
            raise ValueError("ami_chunk_size must be at least 1 byte")
        self.name = name
        self.host = host
        self.ami_port = ami_port
        self._accounts = tuple(accounts)
        self._clock = clock
        self._settings = CallSettings(
            agi_host=agi_host,
            agi_port=agi_port,
            time_scale=time_scale,
            prompts=Prompts(prompt_seconds, dict(prompt_durations), frozenset(missing_prompts)),
            agi_session_limit=agi_session_limit,
            agi_source=agi_source,
        )
        self._count_from_boot(uptime)
        self._restart_grace = _grace_for(time_scale) if restart_grace is None else restart_grace
        self._restart_downtime = restart_downtime
        self._templates = templates if templates is not None else TemplateLibrary()
        self.rng = random.Random(seed)
        self.state = PbxState(login_time=int(clock()))
        self._configured = {q: tuple(m) for q, m in queues.items()}
        self._load_configured_queues()
        self._ami = AmiServer(
            self, chunk_size=ami_chunk_size, login_failure_delay=login_failure_delay
        )
        self._calls: dict[asyncio.Task[CallResult], Call] = {}
        self._up: asyncio.Event | None = None
        self._restarting = False
        self._logins = 0
        self._login_changed: asyncio.Event | None = None
        self.login_attempts: list[tuple[str, bool, float]] = []
        """(username, accepted, at) for every Login; `at` is `time.monotonic()`."""
        self.actions_received: list[dict[str, str]] = []
        """Every AMI action any client sent, headers as sent."""

    def _count_from_boot(self, uptime: int) -> None:
        """Uniqueids, channel numbers and uptime restart with Asterisk, as the real ones do."""
        self._uniqueids = 0
        self._channel_numbers: dict[str, int] = {}
        self._uptime_base = uptime
        self._boot = time.monotonic()

    def _load_configured_queues(self) -> None:
        """The members queues.conf lists, known before any call, as after a reload."""
        for queue, members in self._configured.items():
            self.state.add_queue(queue, [(m.name, m.interface) for m in members])

    def __repr__(self) -> str:
        return f"<SimulatedPbx {self.name} ami={self.host}:{self.ami_port}>"

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._up = asyncio.Event()
        self._login_changed = asyncio.Event()
        self.ami_port = await self._ami.listen(self.host, self.ami_port)
        self._up.set()

    async def stop(self) -> None:
        for task, call in tuple(self._calls.items()):
            call.abort()
            task.cancel()
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        await self._ami.stop_listening()
        await self._ami.cancel_all()

    async def __aenter__(self) -> SimulatedPbx:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- calls ---------------------------------------------------------------------------------

    async def place_call(self, plan: CallPlan) -> CallResult:
        """Run one call from the caller dialling in to its last AMI event."""
        return await self.start_call(plan)

    def start_call(self, plan: CallPlan) -> asyncio.Task[CallResult]:
        return asyncio.create_task(self._run_call(plan))

    async def _run_call(self, plan: CallPlan) -> CallResult:
        if self._up is None:
            raise RuntimeError("start() the simulated PBX before placing calls")
        await self._up.wait()
        self.state.add_queue(plan.queue, [(plan.agents[0].name, plan.agents[0].interface)])
        if plan.flow in TRANSFER_FLOWS:
            second = plan.agents[1]
            self.state.add_queue(plan.transfer_queue, [(second.name, second.interface)])
        call = Call(self, self._settings, plan, self._templates.flow(plan))
        task = asyncio.current_task()
        assert task is not None
        self._calls[task] = call
        try:
            return await call.run()
        finally:
            self._calls.pop(task, None)

    def linkedids(self) -> tuple[str, ...]:
        """The Linkedids of the calls in progress, oldest first."""
        return tuple(call.linkedid for call in self._calls.values())

    # ---- what calls and AMI sessions use -----------------------------------------------------

    def publish(self, headers: Sequence[tuple[str, str]], clock: CallClock) -> None:
        name = headers[0][1]
        self.state.apply(name, headers, clock)
        self.publish_event(headers)

    def publish_event(self, headers: Sequence[tuple[str, str]]) -> None:
        name = headers[0][1]
        privilege = next((v for k, v in headers if k == "Privilege"), "")
        self._ami.broadcast(name, privilege_mask(privilege), headers)

    def new_uniqueid(self) -> str:
        number = self._uniqueids
        self._uniqueids += 1
        return f"{int(self._clock())}.{number}"

    def new_channel_number(self, technology: str) -> int:
        number = self._channel_numbers.get(technology, 0)
        self._channel_numbers[technology] = number + 1
        return number

    def epoch(self) -> float:
        return self._clock()

    def account(self, username: str) -> AmiAccount | None:
        lowered = username.lower()
        return next((a for a in self._accounts if a.username.lower() == lowered), None)

    def uptime(self) -> int:
        return self._uptime_base + int(time.monotonic() - self._boot)

    def shutting_down(self) -> bool:
        return self._restarting

    def record_action(self, action: dict[str, str]) -> None:
        self.actions_received.append(action)

    def record_login(self, username: str, accepted: bool) -> None:
        self.login_attempts.append((username, accepted, time.monotonic()))
        if accepted:
            self._logins += 1
            if self._login_changed is not None:
                self._login_changed.set()

    @property
    def connected_sessions(self) -> int:
        """AMI TCP connections open right now (logged in or not)."""
        return len(self._ami.sessions)

    async def wait_for_logins(self, count: int = 1, timeout: float = 5.0) -> None:
        """Until `count` successful logins happened since start; TimeoutError otherwise."""
        assert self._login_changed is not None, "start() first"
        async with asyncio.timeout(timeout):
            while self._logins < count:
                self._login_changed.clear()
                await self._login_changed.wait()

    # ---- faults ----------------------------------------------------------------------------------

    async def drop_ami_connections(self) -> None:
        """Cut every AMI TCP connection without a Shutdown event, as a network fault would."""
        await self._ami.close_sessions(graceful=False)

    async def cut_ami(self) -> None:
        """A network outage: cut every AMI connection and refuse new ones until `restore_ami()`.

        Calls go on meanwhile; their events reach nobody, as with a real
        Asterisk whose manager clients are unreachable.
        """
        await self._ami.stop_listening()
        await self._ami.close_sessions(graceful=False)

    async def restore_ami(self) -> None:
        """End the outage `cut_ami()` started: the AMI port accepts connections again."""
        self.ami_port = await self._ami.listen(self.host, self.ami_port)

    def freeze_ami(self) -> None:
        """Keep AMI sockets open but answer nothing and send nothing: a half-open connection."""
        self._ami.freeze()

    def thaw_ami(self) -> None:
        self._ami.thaw()

    async def restart(self) -> None:
        """`core restart now` (facts 46-49).

        Live calls are hung up (SoftHangupRequest Cause 4; a FastAGI session
        gets `200 result=-1`/`HANGUP` and `restart_grace` to close its socket),
        AMI actions meanwhile answer `Asterisk is shutting down`, then
        `Shutdown` (`Cleanly` if every FastAGI socket was closed by the
        service), the AMI connections close, the port refuses connections for
        `restart_downtime`, and the PBX comes back with Uptime 1 and its
        Uniqueid and channel counters at 0.
        """
        assert self._up is not None, "start() first"
        loop = asyncio.get_running_loop()
        self._restarting = True
        deadline = loop.time() + self._restart_grace
        calls = dict(self._calls)
        for call in calls.values():
            call.request_shutdown(deadline)
        if calls:
            await asyncio.wait(tuple(calls), timeout=self._restart_grace + 2.0)
        cleanly = all(not call.left_open for call in calls.values())
        self._up.clear()
        self.publish_event(
            [
                ("Event", "Shutdown"),
                ("Privilege", "system,all"),
                ("Shutdown", "Cleanly" if cleanly else "Uncleanly"),
                ("Restart", "True"),
            ]
        )
        await self._ami.close_sessions(graceful=True)
        await self._ami.stop_listening()
        self._count_from_boot(1)
        self.state.reset(login_time=int(self._clock()))
        self._load_configured_queues()
        await asyncio.sleep(self._restart_downtime)
        self.ami_port = await self._ami.listen(self.host, self.ami_port)
        self._restarting = False
        self._up.set()
