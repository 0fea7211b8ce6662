"""Detractor alerts: a signed JSON webhook for every survey with a 0-6.

The AGI route calls `survey_finished` with the caller possibly still on the
line, so it only builds the body and puts it on a bounded queue - no IO, no
await, never an exception. Worker tasks deliver in the background and retry
with exponential backoff (with jitter, so a receiver coming back up is not hit
by every retry at once). A full queue drops the newest alert and counts it:
memory stays bounded when the receiver is down for hours.

The body is built once, so every retry sends the same bytes: the signature
`X-IVR-Survey-Signature: sha256=<hex HMAC-SHA256 of the body>` and the delivery
id `X-IVR-Survey-Delivery` stay the same, and a receiver can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
from yarl import URL

from ivr.adapters.web.metrics import AlertCounts
from ivr.config.settings import AlertsConfig
from ivr.core.domain import Answer, CallRecord, SurveyStatus
from ivr.core.nps import Category, classify
from ivr.core.questions import NPS_QUESTIONS

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-IVR-Survey-Signature"
DELIVERY_HEADER = "X-IVR-Survey-Delivery"
WORKERS = 2
# Client errors that may pass: the receiver timed out or asked us to slow down.
_RETRY_STATUSES = frozenset({408, 425, 429})


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def is_detractor_survey(answers: Sequence[Answer]) -> bool:
    """Only the NPS questions make a detractor: a CSAT of 1 is not an NPS score."""
    return any(
        answer.question in NPS_QUESTIONS
        and answer.value is not None
        and classify(answer.value) is Category.DETRACTOR
        for answer in answers
    )


@dataclass(frozen=True, slots=True)
class _Delivery:
    id: str
    body: bytes
    survey_id: int


def alert_body(
    call: CallRecord,
    survey_id: int,
    status: SurveyStatus,
    answers: Sequence[Answer],
    *,
    dashboard_url: str,
    sent_at: datetime,
) -> dict[str, object]:
    """The webhook's JSON document (unmasked: it goes to the team that calls back)."""
    agent = call.last_agent
    scores = {answer.question: answer.value for answer in answers}
    link = dashboard_url.rstrip("/") + "/dashboard/agent"
    if agent is not None:
        link += "?name=" + quote(agent.name, safe="")
    return {
        "event": "detractor",
        "survey_id": survey_id,
        "status": SurveyStatus(status).value,
        "pbx": call.pbx,
        "linkedid": call.linkedid,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "queue": call.queue,
        "agent": None if agent is None else agent.name,
        "agent_interface": None if agent is None else agent.interface,
        "hold_seconds": call.hold_seconds,
        "talk_seconds": call.talk_seconds,
        "scores": scores,
        "dashboard_url": link,
        "sent_at": sent_at.isoformat(),
    }


class DetractorAlerts:
    """`ivr.ports.SurveyObserver` that posts detractor surveys to the webhook.

    Disabled (every call a no-op) when `[alerts] webhook_url` is empty.
    """

    def __init__(
        self,
        config: AlertsConfig,
        *,
        dashboard_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._dashboard_url = dashboard_url
        self._clock = clock
        self._sleep = sleep
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue(maxsize=config.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._client: aiohttp.ClientSession | None = None
        self._delivered = self._retried = self._failed = self._dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self._config.webhook_url)

    def counts(self) -> AlertCounts:
        return AlertCounts(
            delivered=self._delivered,
            retried=self._retried,
            failed=self._failed,
            dropped=self._dropped,
            queued=self._queue.qsize(),
        )

    async def start(self) -> None:
        if not self.enabled or self._workers:
            return
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._config.timeout),
            headers={"User-Agent": "ivr-survey detractor alert"},
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"detractor-alerts-{number}")
            for number in range(WORKERS)
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Give queued alerts `grace` seconds, then cancel; say how many were lost."""
        if not self._workers:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        lost = self._queue.qsize()
        if lost:
            log.warning("detractor alerts: %d alert(s) not sent before shutdown", lost)
        if self._client is not None:
            await self._client.close()
            self._client = None

    def survey_finished(
        self,
        call: CallRecord,
        survey_id: int,
        status: SurveyStatus,
        answers: Sequence[Answer],
    ) -> None:
        """Queue an alert if any answer is a detractor score; returns at once."""
        try:
            if not self.enabled or not is_detractor_survey(answers):
                return
            document = alert_body(
                call,
                survey_id,
                status,
                answers,
                dashboard_url=self._dashboard_url,
                sent_at=self._clock(),
            )
            body = json.dumps(document, ensure_ascii=False).encode("utf-8")
            self._queue.put_nowait(_Delivery(id=uuid.uuid4().hex, body=body, survey_id=survey_id))
        except asyncio.QueueFull:
            self._dropped += 1
            log.warning(
                "detractor alerts: queue full (%d), alert for survey %d dropped",
                self._config.queue_size,
                survey_id,
            )
        except Exception:
            log.exception("detractor alerts: could not queue the alert for survey %d", survey_id)

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            except Exception:
                self._failed += 1
                log.exception("detractor alerts: survey %d: unexpected failure", delivery.survey_id)
            finally:
                self._queue.task_done()

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with equal jitter: between half and all of the step."""
        step: float = min(
            self._config.backoff_max, self._config.backoff_initial * 2.0 ** (attempt - 1)
        )
        return step / 2 + random.uniform(0, step / 2)

    async def _deliver(self, delivery: _Delivery) -> None:
        assert self._client is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._config.secret, delivery.body),
            DELIVERY_HEADER: delivery.id,
        }
        for attempt in range(1, self._config.max_attempts + 1):
            if attempt > 1:
                self._retried += 1
            try:
                async with self._client.post(
                    self._config.webhook_url, data=delivery.body, headers=headers
                ) as reply:
                    status = reply.status
            except (aiohttp.ClientError, TimeoutError) as error:
                outcome = without_url(f"{type(error).__name__}: {error}", self._config.webhook_url)
            else:
                if 200 <= status < 300:
                    self._delivered += 1
                    return
                outcome = f"HTTP {status}"
                if 400 <= status < 500 and status not in _RETRY_STATUSES:
                    self._failed += 1
                    log.error(
                        "detractor alerts: survey %d refused by the webhook (%s); not retried",
                        delivery.survey_id,
                        outcome,
                    )
                    return
            if attempt == self._config.max_attempts:
                break
            delay = self._backoff(attempt)
            log.warning(
                "detractor alerts: survey %d attempt %d failed (%s); retrying in %.1f s",
                delivery.survey_id,
                attempt,
                outcome,
                delay,
            )
            await self._sleep(delay)
        self._failed += 1
        log.error(
            "detractor alerts: survey %d not delivered after %d attempts",
            delivery.survey_id,
            self._config.max_attempts,
        )


def without_url(text: str, url: str) -> str:
    """`text` with every part of `url` that can carry a secret masked.

    Chat webhooks carry their token in the path or query, and aiohttp puts the
    whole URL in some errors (TooManyRedirects, InvalidURL).
    """
    parsed = URL(url)
    parts = {
        url,
        str(parsed),
        parsed.raw_path_qs,
        parsed.path_qs,
        parsed.raw_path,
        parsed.path,
        parsed.raw_query_string,
        parsed.query_string,
        parsed.user or "",
        parsed.password or "",
    }
    for part in sorted(parts, key=len, reverse=True):
        if len(part) > 1:
            text = text.replace(part, "<webhook URL>" if part in (url, str(parsed)) else "***")
    return text
