"""The `nps` FastAGI route: one caller, one survey.

Adapter only: it finds the call, asks the policy, opens the survey in the
repository, then turns the pure survey machine's commands into AGI commands
and AGI replies into survey replies. Every answer is written as soon as the
machine hands it over, so a caller who hangs up mid-way still counts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from ivr import survey
from ivr.agi_protocol import AgiReply, options, quote_argument, unknown_to_none
from ivr.background import Background
from ivr.domain import AgentLeg, Answer, CallRecord, SurveyStart, SurveyStatus
from ivr.fastagi import AgiChannel
from ivr.ports import SurveyObserver, SurveyRepository
from ivr.screening import Screening

log = logging.getLogger(__name__)

# The `key=value` AGI arguments the dialplan recipes pass (dialplan/README.md);
# `pbx` is read before the route, by ivr/attribution.py.
KNOWN_OPTIONS = frozenset({"optin", "initiated", "pbx"})

# The longest a prompt may play before the session is considered stuck.
MAX_PROMPT_SECONDS = 120.0


CallLookup = Callable[[str], CallRecord | None]
"""Finds the tracked call for a Linkedid, if AMI tracking knows it."""


class NpsRoute:
    def __init__(
        self,
        *,
        pbx: str,
        spec: Callable[[], survey.SurveySpec],
        calls: CallLookup,
        repository: SurveyRepository,
        background: Background,
        screening: Screening,
        observer: SurveyObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pbx = pbx
        self._background = background
        self._observer = observer
        self._spec = spec
        self._calls = calls
        self._repository = repository
        self._clock = clock
        self._screening = screening

    async def __call__(self, channel: AgiChannel) -> None:
        request = channel.request
        # Read once: a reload (SIGHUP) during this call does not change its survey.
        spec = self._spec()
        linkedid = request.linkedid_argument or await self._read_linkedid(channel)
        if linkedid is None:
            log.error(
                "AGI %s: no Linkedid (pass ${CHANNEL(linkedid)} as the first AGI argument); "
                "no survey",
                request.channel,
            )
            return
        call = self._calls(linkedid)
        if call is None:
            call = await self._call_from_channel(channel, linkedid)
            log.info(
                "Linkedid=%s: call unknown to AMI tracking; surveying with channel data "
                "(queue=%s, agent=%s), marked partial",
                linkedid,
                call.queue,
                call.last_agent.name if call.last_agent else None,
            )
        screened = await self._screening.screen(call, request.channel, request.uniqueid)
        if screened is None:
            return
        call = screened
        given = options(request.arguments)
        unknown = sorted(set(given) - KNOWN_OPTIONS)
        if unknown:
            log.info("Linkedid=%s: AGI arguments ignored: %s", linkedid, ", ".join(unknown))
        start = SurveyStart(
            pbx=self._pbx,
            linkedid=linkedid,
            channel=request.channel,
            uniqueid=request.uniqueid,
            language=request.language,
            started_at=self._clock(),
            opted_in=True if given.get("optin") == "1" else None,
            initiated_by=given.get("initiated"),
        )
        # The survey row is written while ANSWER and the intro go out, so the
        # caller never waits on the database before hearing something; the
        # session waits for it before the first question.
        begin = asyncio.create_task(self._repository.begin_survey(call, start))
        session = _Session(
            channel,
            call=call,
            observer=self._observer,
            begin=begin,
            repository=self._repository,
            clock=self._clock,
            background=self._background,
        )
        await session.run(spec)

    async def _read_linkedid(self, channel: AgiChannel) -> str | None:
        reply = await channel.command("GET VARIABLE CHANNEL(linkedid)")
        return unknown_to_none(reply.data) if reply.ok and reply.result == "1" else None

    async def _call_from_channel(self, channel: AgiChannel, linkedid: str) -> CallRecord:
        queue = await _variable(channel, "QUEUENAME")
        member_name = await _variable(channel, "MEMBERNAME")
        member_interface = await _variable(channel, "MEMBERINTERFACE")
        request = channel.request
        agents: tuple[AgentLeg, ...] = ()
        if member_name or member_interface:
            agents = (
                AgentLeg(
                    name=member_name or member_interface or "",
                    interface=member_interface or "",
                    queue=queue,
                    channel="",
                    connected_at=0.0,
                ),
            )
        return CallRecord(
            pbx=self._pbx,
            linkedid=linkedid,
            caller_uniqueid=request.uniqueid or None,
            caller_channel=request.channel or None,
            caller_number=unknown_to_none(request.get("agi_callerid")),
            caller_name=unknown_to_none(request.get("agi_calleridname")),
            queue=queue,
            agents=agents,
            partial=True,
        )


async def _variable(channel: AgiChannel, name: str) -> str | None:
    reply = await channel.command(f"GET VARIABLE {name}")
    if reply.ok and reply.result == "1":
        return unknown_to_none(reply.data)
    return None


class _Session:
    """Drives one survey machine over one AGI channel."""

    def __init__(
        self,
        channel: AgiChannel,
        *,
        call: CallRecord,
        observer: SurveyObserver | None,
        begin: asyncio.Task[int | None],
        repository: SurveyRepository,
        clock: Callable[[], datetime],
        background: Background,
    ) -> None:
        self._background = background
        self._channel = channel
        self._call = call
        self._observer = observer
        self._linkedid = call.linkedid
        self._answers: list[Answer] = []
        self._begin = begin
        self._repository = repository
        self._clock = clock
        self._writes: list[asyncio.Task[None]] = []

    async def run(self, spec: survey.SurveySpec) -> None:
        status = SurveyStatus.HUNG_UP
        try:
            await self._channel.command("ANSWER")
            transition = survey.start(spec)
            while True:
                self._store(transition.store)
                if isinstance(transition.command, survey.Finish):
                    status = transition.command.status
                    break
                if _asks_a_question(transition.command) and await self._begin is None:
                    log.warning(
                        "Linkedid=%s: already surveyed; this request is not counted twice",
                        self._linkedid,
                    )
                    return
                reply = await self._perform(transition.command)
                transition = survey.step(transition.state, reply)
        finally:
            self._background.spawn(self._close(status), what=f"finish survey {self._linkedid}")

    async def _close(self, status: SurveyStatus) -> None:
        """Wait for this survey's answers, then record where it stopped."""
        await self._flush()
        survey_id = await self._begin
        if survey_id is None:
            return
        try:
            await self._repository.finish_survey(survey_id, status, self._clock())
        except Exception:
            log.exception(
                "Linkedid=%s: could not record the survey's status %s", self._linkedid, status
            )
            raise
        log.info("Linkedid=%s: survey %s", self._linkedid, status.value)
        if self._observer is not None:
            self._observer.survey_finished(self._call, survey_id, status, tuple(self._answers))

    def _store(self, outcomes: tuple[survey.Outcome, ...]) -> None:
        for outcome in outcomes:
            answer = Answer(outcome.question, outcome.value, outcome.attempts, self._clock())
            self._answers.append(answer)
            self._writes.append(asyncio.create_task(self._write(answer)))

    async def _write(self, answer: Answer) -> None:
        try:
            survey_id = await self._begin
            if survey_id is not None:
                await self._repository.save_answer(survey_id, answer)
        except Exception:
            log.exception(
                "Linkedid=%s: could not store the %s answer (%s)",
                self._linkedid,
                answer.question,
                answer.value,
            )
            raise

    async def _flush(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def _perform(self, command: survey.Play | survey.WaitDigit) -> survey.Reply:
        if isinstance(command, survey.Play):
            escapes = survey.ANSWER_KEYS if command.interruptible else ""
            reply = await self._channel.command(
                f"STREAM FILE {command.prompt} {quote_argument(escapes)}",
                expected_seconds=MAX_PROMPT_SECONDS,
            )
            if reply.failed:
                return await self._hung_up_or_missing(command.prompt)
            return _key_or(reply, survey.PlayedOut())
        milliseconds = round(command.seconds * 1000)
        reply = await self._channel.command(
            f"WAIT FOR DIGIT {milliseconds}", expected_seconds=command.seconds
        )
        return _key_or(reply, survey.Timeout())

    async def _hung_up_or_missing(self, prompt: str) -> survey.Reply:
        """Tell a hang-up from a missing prompt file, which Asterisk answers alike (fact 52).

        After a hang-up Asterisk sends a `HANGUP` line before the next reply
        (fact 22); a harmless GET VARIABLE shows whether one comes.
        """
        if not self._channel.hangup_notified:
            await self._channel.command("GET VARIABLE CHANNEL(state)")
        if self._channel.hangup_notified:
            return survey.HungUp()
        log.error(
            "Linkedid=%s: prompt %r could not be played and the caller is still there: "
            "the file is probably missing on the Asterisk host (run `ivr-survey check`)",
            self._linkedid,
            prompt,
        )
        return survey.PromptMissing()


def _asks_a_question(command: survey.Command) -> bool:
    """Questions are the interruptible prompts; nothing before them needs the survey row."""
    return isinstance(command, survey.Play) and command.interruptible


def _key_or(reply: AgiReply, otherwise: survey.Reply) -> survey.Reply:
    """Map a STREAM FILE / WAIT FOR DIGIT reply: an ASCII key code, 0 for none.

    511 means the caller is gone. Any other refusal (510, 520) is our bug or an
    Asterisk we do not know; the survey ends either way so the caller is never
    left in silence.
    """
    if not reply.ok:
        if not reply.dead_channel:
            log.error("Asterisk refused a survey command: %s", reply.text)
        return survey.HungUp()
    code = reply.result_int()
    if code is None or code < 0:
        return survey.HungUp()
    if code == 0:
        return otherwise
    if code > sys.maxunicode:
        # Not a key any phone sends: the caller hears "invalid" and is asked again.
        return survey.Digit("\N{REPLACEMENT CHARACTER}")
    return survey.Digit(chr(code))
