"""Who is surveyed, through the whole service over TCP against the simulated PBX.

Each test configures a [policy] or [privacy] setting, places calls on the
simulator and reads back what the service stored: the survey (or none) and the
policy's decision on the call row. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ivr.config.settings import PolicyConfig, PrivacyConfig
from ivr.core.domain import CallRecord
from ivr.runtime.service import Service
from ivr.sim import CallPlan, Flow
from storage.database import create_engine, session_factory, upgrade
from storage.models import Call
from storage.policy_store import SqlPolicyStore
from tests.helpers.stack import (
    PBX,
    Stack,
    after_prompt,
    scores,
    service_config,
    started_pbx,
)
from tests.helpers.writes import committed_writes

NUMBER = "+15550001111"
HASH_KEY = "e2e-hash-key-0123456789abcdef"
ANSWERS = (after_prompt("9"), after_prompt("8"))
SURVEYED = [("agent", 9, 1), ("company", 8, 1)]


@dataclasses.dataclass
class PolicyStack:
    stack: Stack
    database_url: str

    async def call(self, plan: CallPlan) -> tuple[str | None, list[tuple[str, int | None, int]]]:
        """Place the call; the stored decision and the stored scores ([] when not surveyed)."""
        result = await self.stack.pbx.place_call(plan)
        await self.stack.stored_call(result.linkedid)
        decision = await self.decision(result.linkedid)
        survey = await self.stack.survey(result.linkedid)
        return decision, scores(survey) if survey is not None else []

    async def decision(self, linkedid: str, timeout: float = 5.0) -> str | None:
        """The call row's policy decision, once the background write has landed."""
        engine = create_engine(self.database_url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                async with engine.connect() as connection:
                    decision = (
                        await connection.execute(
                            sa.select(Call.policy_decision).where(
                                Call.pbx == PBX, Call.linkedid == linkedid
                            )
                        )
                    ).scalar_one_or_none()
                if decision is not None or time.monotonic() > deadline:
                    return decision
                await asyncio.sleep(0.05)
        finally:
            await engine.dispose()


PolicyStackFactory = Callable[..., Awaitable[PolicyStack]]


@pytest.fixture
async def make_policy_stack(database_url: str) -> AsyncIterator[PolicyStackFactory]:
    await upgrade(database_url)
    started: list[Stack] = []

    async def make(
        *,
        policy: PolicyConfig | None = None,
        privacy: PrivacyConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> PolicyStack:
        pbx, agi_port = await started_pbx()
        config = dataclasses.replace(
            service_config(pbx.ami_port, database_url, agi_port),
            policy=policy or PolicyConfig(),
            privacy=privacy or PrivacyConfig(),
        )
        stack = Stack(pbx, Service(config, clock=clock))
        started.append(stack)
        await stack.start_service()
        return PolicyStack(stack, database_url)

    yield make
    for stack in started:
        await stack.service.stop(grace=1.0)
        await stack.pbx.stop()


async def opt_out(database_url: str, number: str, key: str) -> None:
    engine = create_engine(database_url)
    try:
        await SqlPolicyStore(session_factory(engine)).add_optout(key, number, datetime.now(UTC))
    finally:
        await engine.dispose()


async def test_default_policy_surveys_and_records_eligible(
    make_policy_stack: PolicyStackFactory,
) -> None:
    """No [policy] section: every call is surveyed, as before, and the decision is stored."""
    stack = await make_policy_stack()
    assert ("eligible", SURVEYED) == await stack.call(CallPlan(survey=ANSWERS))


async def test_opted_out_caller_is_not_surveyed_and_the_reason_is_stored(
    make_policy_stack: PolicyStackFactory,
) -> None:
    """A number on the opt-out list (written however the caller spelled it) hears nothing."""
    stack = await make_policy_stack()
    await opt_out(stack.database_url, NUMBER, "15550001111")
    plan = CallPlan(caller_number="+1 555 000 1111", survey=ANSWERS)
    assert ("opted_out", []) == await stack.call(plan)


async def test_the_same_caller_is_not_asked_again_within_the_cooldown(
    make_policy_stack: PolicyStackFactory,
) -> None:
    """Second call from the same number inside cooldown_days: no survey; another number is."""
    stack = await make_policy_stack(policy=PolicyConfig(cooldown_days=7))
    first = await stack.call(CallPlan(survey=ANSWERS))
    second = await stack.call(CallPlan(survey=ANSWERS))
    other = await stack.call(CallPlan(caller_number="+15550002222", survey=ANSWERS))
    assert [("eligible", SURVEYED), ("cooldown", []), ("eligible", SURVEYED)] == [
        first,
        second,
        other,
    ]


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(0.0, ("sampled_out", [])), (100.0, ("eligible", SURVEYED))],
    ids=["0%", "100%"],
)
async def test_sampling_zero_surveys_nobody_and_a_hundred_everybody(
    make_policy_stack: PolicyStackFactory,
    percent: float,
    expected: tuple[str, list[tuple[str, int | None, int]]],
) -> None:
    """sample_percent 0 refuses every call as sampled_out; 100 surveys it."""
    stack = await make_policy_stack(policy=PolicyConfig(sample_percent=percent))
    assert expected == await stack.call(CallPlan(survey=ANSWERS))


async def test_excluded_queue_is_not_surveyed(make_policy_stack: PolicyStackFactory) -> None:
    """exclude_queues: calls of that queue are refused; other queues are surveyed."""
    stack = await make_policy_stack(policy=PolicyConfig(exclude_queues="support, internal"))
    excluded = await stack.call(CallPlan(queue="support", survey=ANSWERS))
    kept = await stack.call(CallPlan(queue="sales", caller_number="+15550003333", survey=ANSWERS))
    assert [("excluded_queue", []), ("eligible", SURVEYED)] == [excluded, kept]


async def test_short_conversations_are_not_surveyed(make_policy_stack: PolicyStackFactory) -> None:
    """min_talk_seconds against AgentComplete's TalkTime, which AMI reports before the AGI."""
    stack = await make_policy_stack(policy=PolicyConfig(min_talk_seconds=60))
    short = await stack.call(CallPlan(talk_seconds=20, survey=ANSWERS))
    long = await stack.call(CallPlan(talk_seconds=95, caller_number="+15550004444", survey=ANSWERS))
    assert [("short_talk", []), ("eligible", SURVEYED)] == [short, long]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 22, 10, 0, tzinfo=UTC), ("outside_hours", [])),
        (datetime(2026, 11, 18, 10, 0, tzinfo=UTC), ("eligible", SURVEYED)),
    ],
    ids=["Sunday", "Wednesday 11:00 Berlin"],
)
async def test_calls_outside_business_hours_are_not_surveyed(
    make_policy_stack: PolicyStackFactory,
    now: datetime,
    expected: tuple[str, list[tuple[str, int | None, int]]],
) -> None:
    """hours and timezone are read against the service's clock (injected here)."""
    policy = PolicyConfig(hours="mon-fri 08:00-18:00", timezone="Europe/Berlin")
    stack = await make_policy_stack(policy=policy, clock=now.timestamp)
    assert expected == await stack.call(CallPlan(survey=ANSWERS))


async def test_the_daily_cap_stops_a_queues_surveys(make_policy_stack: PolicyStackFactory) -> None:
    """daily_caps sales:1: the second sales call of the day is refused; support has no cap."""
    stack = await make_policy_stack(policy=PolicyConfig(daily_caps="sales:1"))
    decisions = [
        await stack.call(
            CallPlan(queue=queue, caller_number=f"+1555000{index:04d}", survey=ANSWERS)
        )
        for index, queue in enumerate(["sales", "sales", "support", "support"])
    ]
    assert [
        ("eligible", SURVEYED),
        ("queue_cap", []),
        ("eligible", SURVEYED),
        ("eligible", SURVEYED),
    ] == decisions


async def test_anonymous_mode_stores_no_number_and_still_cools_the_caller_down(
    make_policy_stack: PolicyStackFactory,
) -> None:
    """anonymize: the call row has no number or name, only the HMAC of the number,
    and that key is enough for the cooldown to refuse the same caller's next call."""
    stack = await make_policy_stack(
        policy=PolicyConfig(cooldown_days=1),
        privacy=PrivacyConfig(anonymize=True, hash_key=HASH_KEY),
    )
    first_plan = CallPlan(caller_name="Ada Caller", survey=ANSWERS)
    result = await stack.stack.pbx.place_call(first_plan)
    stored = await stack.stack.stored_call(result.linkedid)
    second = await stack.call(CallPlan(caller_name="Ada Caller", survey=ANSWERS))
    expected_key = hmac.new(HASH_KEY.encode(), b"15550001111", hashlib.sha256).hexdigest()
    assert (None, None, expected_key) == (
        stored.caller_number,
        stored.caller_name,
        stored.caller_key,
    )
    assert ("cooldown", []) == second


async def test_abandoned_call_has_no_decision(make_policy_stack: PolicyStackFactory) -> None:
    """A caller who gave up in the queue never reached the survey: decision NULL."""
    stack = await make_policy_stack()
    result = await stack.stack.pbx.place_call(CallPlan(flow=Flow.ABANDON_IN_QUEUE))
    await stack.stack.stored_call(result.linkedid)
    assert await stack.decision(result.linkedid, timeout=0.5) is None


async def test_the_service_purges_old_numbers_at_start_when_retention_is_set(
    make_policy_stack: PolicyStackFactory, database_url: str
) -> None:
    """retention_days: a call stored long before start-up loses number and name in the
    first purge, run at start, keeping its caller key; a call of today keeps both."""
    old = CallRecord(
        pbx=PBX,
        linkedid="1700000000.1",
        caller_number=NUMBER,
        caller_name="Ada Caller",
        caller_key="15550001111",
        started_at=datetime(2025, 1, 1, tzinfo=UTC).timestamp(),
    )
    engine = create_engine(database_url)
    try:
        async with committed_writes(engine) as writes:
            await writes.save_call(old)
    finally:
        await engine.dispose()
    stack = await make_policy_stack(privacy=PrivacyConfig(retention_days=30))
    result = await stack.stack.pbx.place_call(CallPlan(survey=ANSWERS))
    today = await stack.stack.stored_call(result.linkedid)
    purged = await stack.stack.call_row(old.linkedid)
    assert purged is not None
    assert (None, None, "15550001111") == (
        purged.caller_number,
        purged.caller_name,
        purged.caller_key,
    )
    assert (NUMBER, "Customer") == (today.caller_number, today.caller_name)
