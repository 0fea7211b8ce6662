"""`ivr-survey run` under a process manager: SIGTERM/SIGINT stop it, SIGHUP reloads it.

Stopping closes the FastAGI listener first, so Asterisk's next connect fails at
once and the dialplan falls through on AGISTATUS=FAILURE (dialplan/README.md)
instead of callers waiting on a service that is going away. Surveys in progress
get `[agi] drain_seconds` to finish; a second SIGTERM or SIGINT cuts them off
now. Answers already given are stored either way (and survive even SIGKILL:
each is committed the moment it is known).

A reload re-reads the configuration file and the environment. An invalid file
changes nothing: its problems are logged one per line and the old settings stay
in force. A valid one is applied through `Service.reload`; the log names every
changed key, and which of them wait for a restart. Values are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from ivr.config.settings import Config
from ivr.config.values import ConfigError
from ivr.runtime.service import Service

log = logging.getLogger("ivr")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Lifecycle:
    """Turns signals into the service's stop, hurry and reload."""

    def __init__(
        self,
        service: Service,
        *,
        load_config: Callable[[], Config],
        on_reloaded: Callable[[Config], None] = lambda config: None,
    ) -> None:
        self._service = service
        self._load_config = load_config
        self._on_reloaded = on_reloaded
        self._stop = asyncio.Event()
        self._stop_signals = 0

    def listen(self) -> None:
        """Take over the signals; before "running" is logged, because a process
        manager may send SIGHUP as soon as it reads that line, and until then
        SIGHUP's default action would kill the service."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, self.stop_requested, signum)
        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)

    async def run(self) -> None:
        """Wait for a stop signal, then drain and stop the (started) service."""
        loop = asyncio.get_running_loop()
        self.listen()
        try:
            await self._stop.wait()
            drain = self._service.config.agi.drain_seconds
            log.info(
                "stopping: no new surveys; those in progress get up to %.0f s "
                "(send the signal again to cut them off now)",
                drain,
            )
            drained = await self._service.stop(grace=drain)
            log.info(
                "stopped: %d surveys in progress finished, %d cut off at the deadline",
                drained.finished,
                drained.cut_off,
            )
        finally:
            for signum in (*STOP_SIGNALS, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
                    loop.remove_signal_handler(signum)

    def stop_requested(self, signum: int = signal.SIGTERM) -> None:
        self._stop_signals += 1
        if self._stop_signals == 1:
            log.info("%s received", signal.Signals(signum).name)
            if self._service.agi is not None:
                # Refuse new connections now, not after the next scheduling turn.
                self._service.agi.stop_listening()
            self._stop.set()
            return
        log.warning(
            "%s received again: cutting off the surveys still in progress",
            signal.Signals(signum).name,
        )
        if self._service.agi is not None:
            self._service.agi.hurry()

    def reload(self) -> None:
        if self._stop.is_set():
            log.info("SIGHUP ignored: the service is stopping")
            return
        try:
            config = self._load_config()
        except ConfigError as error:
            log.error(
                "reload refused: the configuration has %d problem(s); the old one stays in force",
                len(error.problems),
            )
            for problem in error.problems:
                log.error("  %s", problem)
            return
        report = self._service.reload(config)
        self._on_reloaded(config)
        log.info(
            "configuration reloaded: %s",
            ", ".join(report.applied) + " applied" if report.applied else "no live setting changed",
        )
        if report.need_restart:
            log.warning(
                "changed keys that need a restart to take effect: %s",
                ", ".join(report.need_restart),
            )
