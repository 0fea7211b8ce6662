"""The survey policy applied to one FastAGI request: read, decide, record.

Kept out of the AGI route so the route only asks "survey this call?". The
history read is the one database round trip before the caller hears the
intro (storage/policy_store.py keeps it to one indexed statement); the
decision is written in the background, for every request, surveyed or not,
so the reports can count why calls were not surveyed.

When the history cannot be read in time (the database is down or slow), the
survey still runs, as every other part of the service keeps running through
an outage (storage/spool.py): the opt-out list last read is applied, and the
cooldown and the daily cap are skipped for that call, which the log says.
Refusing instead would silently stop every survey for the whole outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from ivr.adapters.background import Background
from ivr.core.domain import CallRecord
from ivr.core.policy import Decision, HistoryNeeds, PolicyHistory, PolicyRules, Reason, decide
from ivr.core.privacy import Privacy

log = logging.getLogger(__name__)


class PolicyHistoryReader(Protocol):
    async def history(self, call: CallRecord, needs: HistoryNeeds) -> PolicyHistory:
        """The caller's and queue's history, this call left out; only what `needs` asks."""


class RememberedOptOuts:
    """The opt-out list as last read, for deciding while the database is away.

    The list changes from another process (`ivr-survey optout`), so the service
    re-reads it regularly; between reads a new opt-out waits at most one interval
    to be honoured during an outage, and is honoured at once otherwise.
    """

    def __init__(self) -> None:
        self._keys: frozenset[str] = frozenset()
        self.read_at: datetime | None = None

    def remember(self, keys: Iterable[str], read_at: datetime) -> None:
        self._keys = frozenset(keys)
        self.read_at = read_at

    def history_of(self, call: CallRecord) -> PolicyHistory:
        return PolicyHistory(
            opted_out=call.caller_key is not None and call.caller_key in self._keys
        )


class SurveyedHere:
    """The calls this process let through to a survey, newest last, bounded.

    The database says whether a call has a survey, but a survey in progress may
    not be written yet (the writer batches; during an outage it spools), and a
    second request for the same call (a transfer hook, the dialplan going on
    after `Queue()`) often comes while the first is still talking to the caller.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self._limit = limit
        self._calls: OrderedDict[tuple[str, str], None] = OrderedDict()

    def add(self, pbx: str, linkedid: str) -> None:
        self._calls[(pbx, linkedid)] = None
        self._calls.move_to_end((pbx, linkedid))
        while len(self._calls) > self._limit:
            self._calls.popitem(last=False)

    def __contains__(self, call: tuple[str, str]) -> bool:
        return call in self._calls

    def __len__(self) -> int:
        return len(self._calls)


class DecisionRecorder(Protocol):
    async def record_decision(self, call: CallRecord, decision: str) -> None:
        """Store the decision on the call row, creating the row if needed."""


class Screening:
    def __init__(
        self,
        *,
        rules: PolicyRules | Callable[[], PolicyRules],
        privacy: Privacy,
        history: PolicyHistoryReader,
        recorder: DecisionRecorder,
        background: Background,
        clock: Callable[[], datetime],
        remembered: RememberedOptOuts | None = None,
        history_timeout: float = 1.0,
        surveyed_here: SurveyedHere | None = None,
    ) -> None:
        self._remembered = remembered or RememberedOptOuts()
        self._surveyed_here = surveyed_here if surveyed_here is not None else SurveyedHere()
        self._history_timeout = history_timeout
        # A provider (SIGHUP reload, ivr/config/live.py) is read once per request.
        self._rules = rules if callable(rules) else (lambda: rules)
        self._privacy = privacy
        self._history = history
        self._recorder = recorder
        self._background = background
        self._clock = clock

    async def screen(
        self, call: CallRecord, agi_channel: str, agi_uniqueid: str
    ) -> CallRecord | None:
        """The call as it may be stored (`Privacy.protect`) when it is to be surveyed.

        None means no survey: a refusal is logged with the Linkedid and the
        reason. The caller hears nothing until this returns, so the history
        read is bounded by `history_timeout`; past it, or when the database
        refuses, the remembered opt-outs decide (see the module docstring).
        """
        protected = self._privacy.protect(call)
        if (call.pbx, call.linkedid) in self._surveyed_here:
            self._already_surveyed(call, agi_channel)
            return None
        now = self._clock()
        rules = self._rules()
        try:
            history = await asyncio.wait_for(
                self._history.history(protected, rules.history_needed(protected.queue, now)),
                self._history_timeout,
            )
        except Exception as error:
            read_at = self._remembered.read_at
            log.warning(
                "Linkedid=%s: survey history unreadable (%s); deciding on the opt-out list "
                "read at %s, without cooldown or daily cap",
                call.linkedid,
                type(error).__name__ if isinstance(error, TimeoutError) else error,
                read_at.isoformat(timespec="seconds") if read_at else "never",
            )
            history = self._remembered.history_of(protected)
        decision = decide(
            protected, agi_channel, agi_uniqueid, history=history, rules=rules, now=now
        )
        if decision.reason is Reason.ALREADY_SURVEYED:
            self._already_surveyed(call, agi_channel)
            return None
        if decision.survey:
            self._surveyed_here.add(call.pbx, call.linkedid)
        else:
            # An agent's leg reaching the survey is a dialplan mistake (queue option F()).
            level = logging.WARNING if decision.reason is Reason.AGENT_LEG else logging.INFO
            log.log(
                level,
                "Linkedid=%s: no survey on %s (%s)",
                call.linkedid,
                agi_channel,
                decision.reason.value,
            )
        self._background.spawn(
            self._record(protected, decision), what=f"policy decision {call.linkedid}"
        )
        return protected if decision.survey else None

    def _already_surveyed(self, call: CallRecord, agi_channel: str) -> None:
        """Ends the request before ANSWER; nothing stored, the call keeps its first decision."""
        log.info(
            "Linkedid=%s: already surveyed (or being surveyed); the request on %s ends "
            "before answering and is not counted twice",
            call.linkedid,
            agi_channel,
        )

    async def _record(self, call: CallRecord, decision: Decision) -> None:
        try:
            await self._recorder.record_decision(call, decision.reason.value)
        except Exception:
            log.exception(
                "Linkedid=%s: could not store the policy decision %s",
                call.linkedid,
                decision.reason.value,
            )
            raise
