"""The policy applied to one request, and the purge schedule, with the database faked."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from ivr.adapters.background import Background
from ivr.adapters.fastagi.screening import RememberedOptOuts, Screening
from ivr.core.domain import CallRecord
from ivr.core.policy import SURVEY_EVERY_CALL, HistoryNeeds, PolicyHistory
from ivr.core.privacy import Privacy
from ivr.runtime.retention import purge_periodically

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
CALL = CallRecord(pbx="pbx1", linkedid="1795329453.8", caller_number="+15550001111")


class FakeDatabase:
    def __init__(self, history: PolicyHistory | None) -> None:
        self._history = history
        self.decisions: list[tuple[str, str | None, str]] = []

    async def history(self, call: CallRecord, needs: HistoryNeeds) -> PolicyHistory:
        if self._history is None:
            raise ConnectionRefusedError("database down")
        return self._history

    async def record_decision(self, call: CallRecord, decision: str) -> None:
        self.decisions.append((call.linkedid, call.caller_number, decision))


def screening(database: FakeDatabase, background: Background, privacy: Privacy) -> Screening:
    return Screening(
        rules=SURVEY_EVERY_CALL,
        privacy=privacy,
        history=database,
        recorder=database,
        background=background,
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("history", "expected_number", "expected_decisions"),
    [
        (PolicyHistory(), "+15550001111", [("1795329453.8", "+15550001111", "eligible")]),
        (PolicyHistory(opted_out=True), None, [("1795329453.8", "+15550001111", "opted_out")]),
    ],
    ids=["surveyed", "refused"],
)
async def test_every_decision_is_recorded_and_only_a_survey_gets_the_call(
    history: PolicyHistory,
    expected_number: str | None,
    expected_decisions: list[tuple[str, str | None, str]],
) -> None:
    """Surveyed or not, the decision is written; the route gets the call only to survey it."""
    database = FakeDatabase(history)
    background = Background()
    screened = await screening(database, background, Privacy()).screen(CALL, "PJSIP/c-1", "1.2")
    await background.drain(1.0)
    number = screened.caller_number if screened is not None else None
    assert (expected_number, expected_decisions) == (number, database.decisions)


async def test_anonymous_mode_hands_on_and_records_the_call_without_its_number() -> None:
    """What the route stores and what the webhook sees carry only the caller key."""
    database = FakeDatabase(PolicyHistory())
    background = Background()
    privacy = Privacy(anonymize=True, hash_key="k" * 32)
    screened = await screening(database, background, privacy).screen(CALL, "PJSIP/c-1", "1.2")
    await background.drain(1.0)
    assert screened is not None
    assert (None, privacy.caller_key("+15550001111")) == (
        screened.caller_number,
        screened.caller_key,
    )
    assert [("1795329453.8", None, "eligible")] == database.decisions


@pytest.mark.parametrize(
    ("remembered", "expected_surveyed", "expected_decision"),
    [((), True, "eligible"), (("15550001111",), False, "opted_out")],
    ids=["not-opted-out", "opted-out"],
)
async def test_unreadable_history_decides_on_the_remembered_opt_outs(
    caplog: pytest.LogCaptureFixture,
    remembered: tuple[str, ...],
    expected_surveyed: bool,
    expected_decision: str,
) -> None:
    """Database down: surveys keep running, an opted-out caller is still never
    asked (the list as last read), and the log names the call."""
    database = FakeDatabase(None)
    background = Background()
    memory = RememberedOptOuts()
    memory.remember(remembered, NOW)
    subject = Screening(
        rules=SURVEY_EVERY_CALL,
        privacy=Privacy(),
        history=database,
        recorder=database,
        background=background,
        clock=lambda: NOW,
        remembered=memory,
    )
    with caplog.at_level(logging.WARNING):
        screened = await subject.screen(CALL, "PJSIP/c", "1")
    await background.drain(1.0)
    assert (expected_surveyed, [("1795329453.8", "+15550001111", expected_decision)]) == (
        screened is not None,
        database.decisions,
    )
    assert any("Linkedid=1795329453.8" in record.getMessage() for record in caplog.records)


class HangingDatabase(FakeDatabase):
    async def history(self, call: CallRecord, needs: HistoryNeeds) -> PolicyHistory:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_a_history_read_that_hangs_is_cut_short_so_the_caller_is_not_kept_waiting() -> None:
    """A database that accepts and never answers delays the caller by the timeout only."""
    database = HangingDatabase(None)
    background = Background()
    subject = Screening(
        rules=SURVEY_EVERY_CALL,
        privacy=Privacy(),
        history=database,
        recorder=database,
        background=background,
        clock=lambda: NOW,
        history_timeout=0.05,
    )
    screened = await asyncio.wait_for(subject.screen(CALL, "PJSIP/c", "1"), 5.0)
    await background.drain(1.0)
    assert ("eligible", True) == (database.decisions[0][2], screened is not None)


async def test_the_purge_runs_at_once_then_every_interval_and_survives_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """First run at start, later runs every interval; a failed run is logged, not fatal."""
    cut_offs: list[datetime] = []

    async def run(before: datetime) -> list[tuple[str, int]]:
        cut_offs.append(before)
        if len(cut_offs) == 2:
            raise ConnectionRefusedError("database down")
        return [("caller numbers and names", 3)]

    task = asyncio.create_task(
        purge_periodically(run, retention_days=30, interval_hours=0.05 / 3600, clock=lambda: NOW)
    )
    with caplog.at_level(logging.INFO):
        await asyncio.sleep(0.01)
        first_runs = len(cut_offs)
        await asyncio.sleep(0.2)
    task.cancel()
    assert (1, datetime(2026, 10, 19, 10, 0, tzinfo=UTC)) == (first_runs, cut_offs[0])
    assert len(cut_offs) >= 3
    assert any("retention purge failed" in record.getMessage() for record in caplog.records)
