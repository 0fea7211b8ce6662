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
from dataclasses import dataclass
from datetime import UTC, datetime

from ivr.adapters.background import Background
from ivr.adapters.fastagi.protocol import AgiReply, options, quote_argument, unknown_to_none
from ivr.adapters.fastagi.recordings import file_stem, record_command, record_reply
from ivr.adapters.fastagi.screening import Screening
from ivr.adapters.fastagi.server import AgiChannel
from ivr.config.survey_plan import SurveyPlan, SurveyPlanner
from ivr.core import language, survey
from ivr.core.domain import AgentLeg, Answer, CallRecord, Comment, SurveyStart, SurveyStatus
from ivr.ports import SurveyObserver, SurveyRepository

log = logging.getLogger(__name__)

# The `key=value` AGI arguments the dialplan recipes pass (dialplan/README.md);
# `pbx` is read before the route, by ivr/adapters/fastagi/attribution.py.
KNOWN_OPTIONS = frozenset({"optin", "initiated", "pbx", "key"})

# The longest a prompt may play before the session is considered stuck.
MAX_PROMPT_SECONDS = 120.0
# What RECORD FILE may take beyond its limit (the beep, the file's close).
RECORD_MARGIN_SECONDS = 10.0


CallLookup = Callable[[str], CallRecord | None]
"""Finds the tracked call for a Linkedid, if AMI tracking knows it."""


class NpsRoute:
    def __init__(
        self,
        *,
        pbx: str,
        planner: Callable[[], SurveyPlanner],
        calls: CallLookup,
        repository: SurveyRepository,
        background: Background,
        screening: Screening,
        observer: SurveyObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        prompt_exists: language.PromptExists | None = None,
        refuse_unknown: Callable[[str], bool] = lambda linkedid: False,
    ) -> None:
        self._pbx = pbx
        self._refuse_unknown = refuse_unknown
        self._background = background
        self._observer = observer
        self._planner = planner
        self._prompt_exists = prompt_exists
        self._calls = calls
        self._repository = repository
        self._clock = clock
        self._screening = screening

    async def __call__(self, channel: AgiChannel) -> None:
        request = channel.request
        # Read once: a reload (SIGHUP) during this call does not change its survey.
        planner = self._planner()
        call = await self._identify(channel)
        if call is None:
            return
        screened = await self._screening.screen(call, request.channel, request.uniqueid)
        if screened is not None:
            await self._survey(channel, screened, planner)

    async def _identify(self, channel: AgiChannel) -> CallRecord | None:
        """The call this request is for: AMI's, or (marked partial) the channel's
        own, unless it names no Linkedid or one AMI should have seen and did not."""
        request = channel.request
        linkedid = request.linkedid_argument or await self._read_linkedid(channel)
        if linkedid is None:
            log.error(
                "AGI %s: no Linkedid (pass ${CHANNEL(linkedid)} as the first AGI argument); "
                "no survey",
                request.channel,
            )
            return None
        call = self._calls(linkedid)
        if call is None and self._refuse_unknown(linkedid):
            log.warning(
                "Linkedid=%s: AGI %s refused: AMI is connected and has never seen this call "
                "([agi] refuse_unknown_calls); no survey",
                linkedid,
                request.channel,
            )
            return None
        if call is None:
            call = await self._call_from_channel(channel, linkedid)
            log.info(
                "Linkedid=%s: call unknown to AMI tracking; surveying with channel data "
                "(queue=%s, agent=%s), marked partial",
                linkedid,
                call.queue,
                call.last_agent.name if call.last_agent else None,
            )
        return call

    async def _survey(self, channel: AgiChannel, call: CallRecord, planner: SurveyPlanner) -> None:
        request = channel.request
        linkedid = call.linkedid
        given = options(request.arguments)
        unknown = sorted(set(given) - KNOWN_OPTIONS)
        if unknown:
            log.info("Linkedid=%s: AGI arguments ignored: %s", linkedid, ", ".join(unknown))
        started_at = self._clock()

        def begin(chosen_language: str) -> asyncio.Task[int | None]:
            start = SurveyStart(
                pbx=self._pbx,
                linkedid=linkedid,
                channel=request.channel,
                uniqueid=request.uniqueid,
                language=chosen_language,
                started_at=started_at,
                opted_in=True if given.get("optin") == "1" else None,
                initiated_by=given.get("initiated"),
            )
            return asyncio.create_task(self._repository.begin_survey(call, start))

        # The survey row is written while the intro goes out (once the
        # language is known), so the caller never waits on the database before
        # hearing something; the session waits for it before the first question.
        session = _Session(
            channel,
            call=call,
            observer=self._observer,
            begin=begin,
            repository=self._repository,
            clock=self._clock,
            background=self._background,
            prompt_exists=self._prompt_exists,
        )
        await session.run(planner.plan(call.queue))

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
        begin: Callable[[str], asyncio.Task[int | None]],
        repository: SurveyRepository,
        clock: Callable[[], datetime],
        background: Background,
        prompt_exists: language.PromptExists | None,
    ) -> None:
        self._background = background
        self._channel = channel
        self._call = call
        self._observer = observer
        self._linkedid = call.linkedid
        self._answers: list[Answer] = []
        self._start_begin = begin
        self._begin: asyncio.Task[int | None] | None = None
        self._repository = repository
        self._clock = clock
        self._writes: list[asyncio.Task[None]] = []
        self._prompt_exists = prompt_exists
        self._recording = _RecordingTarget("", "", "wav")

    async def run(self, plan: SurveyPlan) -> None:
        status = SurveyStatus.HUNG_UP
        current = self._channel.request.language
        chosen = language.pick(
            plan.language_mode, channel=current, queue=plan.queue_language, offered=plan.offered
        )
        if chosen is not None:
            # Known before a word is played: the row is written while ANSWER goes out.
            self._begin = self._start_begin(chosen)
        try:
            await self._channel.command("ANSWER")
            if chosen is None:
                chosen = await self._ask_language(plan)
                self._begin = self._start_begin(chosen)
            if chosen != current:
                await self._channel.command(f"SET VARIABLE CHANNEL(language) {chosen}")
            self._recording = _RecordingTarget(
                plan.recordings_dir,
                file_stem(self._call.pbx, self._linkedid),
                plan.recording_format,
            )
            spec = language.localized(plan.spec, chosen, plan.default_language, self._prompt_exists)
            transition = survey.start(spec)
            while True:
                self._store(transition.store)
                if transition.comment is not None:
                    self._store_comment(transition.comment)
                if isinstance(transition.command, survey.Finish):
                    status = transition.command.status
                    break
                if _asks_a_question(transition) and await self._survey_id() is None:
                    log.warning(
                        "Linkedid=%s: already surveyed; this request is not counted twice",
                        self._linkedid,
                    )
                    return
                reply = await self._perform(transition.command)
                transition = survey.step(transition.state, reply)
        finally:
            if self._begin is None:
                # The session broke during the language menu: still one survey row, hung up.
                self._begin = self._start_begin(plan.queue_language)
            self._background.spawn(self._close(status), what=f"finish survey {self._linkedid}")

    async def _ask_language(self, plan: SurveyPlan) -> str:
        """Play the menu as a one-question survey; nothing valid means the queue's language."""
        transition = survey.start(language.menu_spec(plan.offered, plan.menu_prompt, plan.spec))
        value: int | None = None
        while True:
            for outcome in transition.store:
                value = outcome.value
            if isinstance(transition.command, survey.Finish):
                break
            reply = await self._perform(transition.command)
            transition = survey.step(transition.state, reply)
        chosen = language.chosen(plan.offered, value, plan.queue_language)
        log.info("Linkedid=%s: language %s (menu answer %s)", self._linkedid, chosen, value)
        return chosen

    def _store_comment(self, recorded: survey.Recorded) -> None:
        target = self._recording
        comment = Comment(
            file=target.stem,
            format=target.format,
            duration_seconds=recorded.seconds,
            ended_by=recorded.ended_by.value,
            recorded_at=self._clock(),
        )
        self._writes.append(asyncio.create_task(self._write_comment(comment)))

    async def _write_comment(self, comment: Comment) -> None:
        try:
            survey_id = await self._survey_id()
            if survey_id is not None:
                await self._repository.save_comment(survey_id, comment)
        except Exception:
            log.exception(
                "Linkedid=%s: could not store the recorded comment %s",
                self._linkedid,
                comment.file,
            )
            raise

    async def _survey_id(self) -> int | None:
        return None if self._begin is None else await self._begin

    async def _close(self, status: SurveyStatus) -> None:
        """Wait for this survey's answers, then record where it stopped."""
        await self._flush()
        survey_id = await self._survey_id()
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
            survey_id = await self._survey_id()
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

    async def _perform(
        self, command: survey.Play | survey.WaitDigit | survey.Record
    ) -> survey.Reply:
        if isinstance(command, survey.Play):
            return await self._play(command)
        if isinstance(command, survey.Record):
            target = self._recording
            reply = await self._channel.command(
                record_command(target.directory, target.stem, target.format, command),
                expected_seconds=command.max_seconds + RECORD_MARGIN_SECONDS,
            )
            result = record_reply(reply)
            if isinstance(result, survey.RecordFailed):
                log.error(
                    "Linkedid=%s: Asterisk could not record the comment in %s (%s); "
                    "check that the folder exists and Asterisk may write there",
                    self._linkedid,
                    target.directory,
                    reply.text,
                )
            return result
        milliseconds = round(command.seconds * 1000)
        reply = await self._channel.command(
            f"WAIT FOR DIGIT {milliseconds}", expected_seconds=command.seconds
        )
        return key_or(reply, survey.Timeout())

    async def _play(self, command: survey.Play) -> survey.Reply:
        """STREAM FILE each `&`-joined part in turn (the language menu); a key stops them."""
        escapes = survey.ANSWER_KEYS if command.interruptible else ""
        parts = command.prompt.split("&")
        for part in parts:
            reply = await self._channel.command(
                f"STREAM FILE {part} {quote_argument(escapes)}",
                expected_seconds=MAX_PROMPT_SECONDS,
            )
            if reply.failed:
                result = await self._hung_up_or_missing(part)
                if isinstance(result, survey.PromptMissing) and len(parts) > 1:
                    continue
                return result
            result = key_or(reply, survey.PlayedOut())
            if not isinstance(result, survey.PlayedOut):
                return result
        return survey.PlayedOut()

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


@dataclass(frozen=True, slots=True)
class _RecordingTarget:
    """Where RECORD FILE writes: `<directory>/<stem>.<format>` on the Asterisk host."""

    directory: str
    stem: str
    format: str


def _asks_a_question(transition: survey.Transition) -> bool:
    """Nothing before the first question needs the survey row: the intro plays
    while it is written."""
    return (
        isinstance(transition.command, survey.Play)
        and transition.state.phase is survey.Phase.ASKING
    )


def key_or(reply: AgiReply, otherwise: survey.Reply) -> survey.Reply:
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
