"""Detractor webhooks: signed, retried with backoff, and never in the caller's way.

A local aiohttp server plays the receiving end; `sleep` is replaced so the
backoff delays are recorded instead of waited for.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.adapters.web import DetractorAlerts
from ivr.adapters.web.metrics import AlertCounts
from ivr.config.settings import AlertsConfig
from ivr.core.domain import SurveyStatus
from tests.storage.builders import answer, call, leg

SECRET = "webhook-secret"
SENT_AT = datetime(2025, 3, 3, 9, 5, tzinfo=UTC)


@dataclass
class Receiver:
    """The webhook's far end: answers with the given statuses in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.arrived.set()
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    far_end = Receiver()
    app = web.Application()
    app.router.add_post("/hook", far_end.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield far_end, str(server.make_url("/hook"))
    finally:
        await server.close()


def sender(url: str, delays: list[float], **overrides: object) -> DetractorAlerts:
    values: dict[str, object] = {
        "webhook_url": url,
        "secret": SECRET,
        "max_attempts": 4,
        "backoff_initial": 1.0,
        "backoff_max": 3.0,
        "timeout": 2.0,
    }
    values.update(overrides)

    async def record(seconds: float) -> None:
        delays.append(seconds)

    sleep: Callable[[float], Awaitable[None]] = record
    return DetractorAlerts(
        AlertsConfig(**values),  # type: ignore[arg-type]  # **values: AlertsConfig fields, by name
        dashboard_url="https://dash.example",
        clock=lambda: SENT_AT,
        sleep=sleep,
    )


RECORD = call("1741000000.7", agents=(leg("Bob Agent", 1002, queue="support"),), queue="support")
DETRACTOR = (answer("agent", 3), answer("company", 8))


async def test_a_detractor_is_posted_signed_after_a_failure_then_success(
    receiver: tuple[Receiver, str],
) -> None:
    """503 then 200: two identical signed posts, one backoff between them."""
    far_end, url = receiver
    far_end.statuses = [503]
    delays: list[float] = []
    alerts = sender(url, delays)
    await alerts.start()

    alerts.survey_finished(RECORD, 42, SurveyStatus.COMPLETED, DETRACTOR)
    await asyncio.wait_for(far_end.arrived.wait(), 5)
    await alerts.stop()

    (first, first_headers), (second, second_headers) = far_end.received
    document = json.loads(second)
    expected_signature = "sha256=" + hmac.new(SECRET.encode(), second, hashlib.sha256).hexdigest()
    assert (
        first,
        first_headers["X-IVR-Survey-Delivery"],
        expected_signature,
        {
            "event": "detractor",
            "survey_id": 42,
            "agent": "Bob Agent",
            "queue": "support",
            "scores": {"agent": 3, "company": 8},
            "caller_number": "+4930123456",
            "dashboard_url": "https://dash.example/dashboard/agent?name=Bob%20Agent",
            "sent_at": "2025-03-03T09:05:00+00:00",
        },
        1,
        AlertCounts(delivered=1, retried=1, failed=0, dropped=0, queued=0),
    ) == (
        second,
        second_headers["X-IVR-Survey-Delivery"],
        second_headers["X-IVR-Survey-Signature"],
        {
            key: document[key]
            for key in (
                "event",
                "survey_id",
                "agent",
                "queue",
                "scores",
                "caller_number",
                "dashboard_url",
                "sent_at",
            )
        },
        len(delays),
        alerts.counts(),
    )


async def test_retries_back_off_exponentially_then_give_up(
    receiver: tuple[Receiver, str],
) -> None:
    """Four attempts, all 500: waits of 1, 2, then 3 s steps (capped), each with
    equal jitter (between half and all of the step), then a failure counted."""
    far_end, url = receiver
    far_end.statuses = [500] * 4
    delays: list[float] = []
    alerts = sender(url, delays)
    await alerts.start()

    alerts.survey_finished(RECORD, 1, SurveyStatus.COMPLETED, DETRACTOR)
    await alerts.stop()  # waits (up to its grace) until the queue is worked off

    steps = [1.0, 2.0, 3.0]
    assert (4, 1, [True, True, True]) == (
        len(far_end.received),
        alerts.counts().failed,
        [step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True)],
    )


async def test_a_refusal_by_the_receiver_is_not_retried(receiver: tuple[Receiver, str]) -> None:
    """A 401 or 400 will not get better by asking again (a wrong secret, say)."""
    far_end, url = receiver
    far_end.statuses = [401]
    alerts = sender(url, [])
    await alerts.start()

    alerts.survey_finished(RECORD, 1, SurveyStatus.COMPLETED, DETRACTOR)
    await alerts.stop()  # waits (up to its grace) until the queue is worked off

    assert (1, 1) == (len(far_end.received), alerts.counts().failed)


async def test_queueing_an_alert_never_waits_for_the_webhook(
    receiver: tuple[Receiver, str],
) -> None:
    """With the receiver taking a second per post, handing over 50 alerts takes
    no time at all: the AGI route is never held up by the webhook."""
    far_end, url = receiver
    far_end.delay = 1.0
    alerts = sender(url, [])
    await alerts.start()

    started = time.perf_counter()
    for survey_id in range(50):
        alerts.survey_finished(RECORD, survey_id, SurveyStatus.COMPLETED, DETRACTOR)
    took = time.perf_counter() - started
    await alerts.stop(grace=0.1)

    assert (True, True) == (took < 0.05, alerts.counts().delivered < 50)


async def test_only_surveys_with_a_zero_to_six_are_sent(receiver: tuple[Receiver, str]) -> None:
    """7 and 10 (and an unanswered question) are no detractor; a 6 on the
    company question alone is."""
    far_end, url = receiver
    alerts = sender(url, [])
    await alerts.start()

    alerts.survey_finished(
        RECORD, 1, SurveyStatus.COMPLETED, (answer("agent", 7), answer("company", 10))
    )
    alerts.survey_finished(RECORD, 2, SurveyStatus.PARTIAL, (answer("agent", None),))
    alerts.survey_finished(
        RECORD, 3, SurveyStatus.COMPLETED, (answer("agent", 9), answer("company", 6))
    )
    await asyncio.wait_for(far_end.arrived.wait(), 5)
    await alerts.stop()

    assert [3] == [json.loads(body)["survey_id"] for body, _ in far_end.received]


async def test_a_full_queue_drops_and_counts_instead_of_growing() -> None:
    """With the receiver down for hours, memory stays bounded by queue_size."""
    alerts = sender("http://127.0.0.1:9/never", [], queue_size=2)

    for survey_id in range(5):
        alerts.survey_finished(RECORD, survey_id, SurveyStatus.COMPLETED, DETRACTOR)

    assert AlertCounts(dropped=3, queued=2) == alerts.counts()


async def test_without_a_webhook_url_nothing_is_queued_or_started() -> None:
    alerts = sender("", [])
    await alerts.start()

    alerts.survey_finished(RECORD, 1, SurveyStatus.COMPLETED, DETRACTOR)
    await alerts.stop()

    assert (False, AlertCounts()) == (alerts.enabled, alerts.counts())
