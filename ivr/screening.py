"""The survey policy applied to one FastAGI request: read, decide, record.

Kept out of the AGI route so the route only asks "survey this call?". The
history read is the one database round trip before the caller hears the
intro (storage/policy_store.py keeps it to one indexed statement); the
decision is written in the background, for every request, surveyed or not,
so the reports can count why calls were not surveyed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ivr.background import Background
from ivr.domain import CallRecord
from ivr.policy import Decision, PolicyHistory, PolicyRules, Reason, decide
from ivr.privacy import Privacy

log = logging.getLogger(__name__)


class PolicyHistoryReader(Protocol):
    async def history(self, call: CallRecord, day_start: datetime) -> PolicyHistory:
        """The caller's and queue's history, this call left out."""


class DecisionRecorder(Protocol):
    async def record_decision(self, call: CallRecord, decision: str) -> None:
        """Store the decision on the call row, creating the row if needed."""


class Screening:
    def __init__(
        self,
        *,
        rules: PolicyRules,
        privacy: Privacy,
        history: PolicyHistoryReader,
        recorder: DecisionRecorder,
        background: Background,
        clock: Callable[[], datetime],
    ) -> None:
        self._rules = rules
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
        reason. When the history cannot be read (database down) the request is
        refused too, rather than risking a survey of someone who opted out;
        nothing could store the survey anyway, and the caller goes straight on.
        """
        protected = self._privacy.protect(call)
        now = self._clock()
        try:
            history = await self._history.history(protected, self._rules.day_start(now))
        except Exception:
            log.exception(
                "Linkedid=%s: could not read the caller's survey history; no survey",
                call.linkedid,
            )
            return None
        decision = decide(
            protected, agi_channel, agi_uniqueid, history=history, rules=self._rules, now=now
        )
        if not decision.survey:
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
