"""Non-NPS answers and comments in the reports: listed and exported, never counted as NPS."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import Comment
from ivr.ports import Grouping, Period, ResponseFilter
from storage.analytics import SqlReportReader
from storage.reports import export_rows, nps_report
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import T0, answer, at, call, start

DAY = Period(date(2025, 3, 3), date(2025, 3, 3))


async def surveyed(repository: CommittedWrites) -> None:
    """Survey 1: agent 9 and a CSAT of 1 with a comment; survey 2: only CSAT 2, fcr no, ces 7."""
    first, second = call("1.1"), call("1.2")
    first_id = await repository.begin_survey(first, start(first))
    second_id = await repository.begin_survey(second, start(second, seconds=200))
    assert first_id is not None
    assert second_id is not None
    for survey_id, question, value in (
        (first_id, "agent", 9),
        (first_id, "csat", 1),
        (second_id, "csat", 2),
        (second_id, "fcr", 0),
        (second_id, "ces", 7),
    ):
        await repository.save_answer(survey_id, answer(question, value))
    await repository.save_comment(
        first_id,
        Comment(file="pbx-lab-1.1", format="wav", duration_seconds=3.5, ended_by="dtmf",
                recorded_at=at(150)),
    )  # fmt: skip


async def test_nps_reports_count_only_the_nps_questions(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A CSAT of 1 or 2 is no detractor: NPS sees the agent's 9 alone."""
    await surveyed(repository)
    reader = SqlReportReader(database_sessions, clock=lambda: T0 + timedelta(days=2))
    before = await reader.nps(DAY, Grouping.ALL)
    await reader.refresh()
    after = await reader.nps(DAY, Grouping.ALL)
    report = await nps_report(database_sessions)
    expected = ([("agent", 1, 0, 0)], [("agent", 1, 0, 0)], ["agent", "company"], (1, 0))
    actual = (
        [(g.question, g.summary.promoters, g.summary.passives, g.summary.detractors)
         for g in before],
        [(g.question, g.summary.promoters, g.summary.passives, g.summary.detractors)
         for g in after],
        [entry.question for entry in report.questions],
        (report.question("agent").overall.n, report.question("company").overall.n),
    )  # fmt: skip
    assert expected == actual


async def test_responses_and_export_carry_the_other_answers_and_the_comment(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The survey with only CSAT/fcr/ces answers is listed too."""
    await surveyed(repository)
    reader = SqlReportReader(database_sessions, clock=lambda: T0 + timedelta(days=2))
    page = await reader.responses(ResponseFilter(period=DAY), after=None, limit=10)
    exported = await export_rows(database_sessions)
    expected = [
        ("1.2", None, 2, 0, 7, None, None),
        ("1.1", 9, 1, None, None, "pbx-lab-1.1", 3.5),
    ]
    assert expected == [
        (r.linkedid, r.agent_score, r.csat, r.fcr, r.ces, r.comment_file, r.comment_seconds)
        for r in page.rows
    ]
    assert expected[::-1] == [
        (r.linkedid, r.agent_score, r.csat, r.fcr, r.ces, r.comment_file, r.comment_seconds)
        for r in exported
    ]
