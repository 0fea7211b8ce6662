"""Exports and NPS reports over stored surveys, and their text forms."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.core.domain import HangupSide, SurveyStatus
from ivr.core.nps import NpsSummary
from storage.reports import (
    ExportRow,
    NpsReport,
    QuestionNps,
    export_rows,
    nps_report,
    rows_to_csv,
    rows_to_json,
)
from tests.helpers.writes import CommittedWrites
from tests.storage.builders import PBX, answer, at, call, leg, start

# (linkedid, agent, queue, agent score, company score); None = asked, not answered.
SURVEYS = [
    ("1", "Alice", "sales", 10, 9),
    ("2", "Alice", "sales", 9, None),
    ("3", "Bob", "sales", 8, 3),
    ("4", "Bob", "support", 7, None),
    ("5", "Bob", "support", 6, None),
    ("6", "Carol", "support", 0, None),
    ("7", "Carol", "support", None, None),
]


def summary(promoters: int, passives: int, detractors: int) -> NpsSummary:
    return NpsSummary(promoters=promoters, passives=passives, detractors=detractors)


async def store_surveys(repository: CommittedWrites) -> None:
    """The SURVEYS table, one survey a minute, each agent on their own extension."""
    extensions = {"Alice": 1001, "Bob": 1002, "Carol": 1003}
    for minute, (linkedid, agent, queue, agent_score, company_score) in enumerate(SURVEYS):
        record = call(linkedid, queue=queue, agents=(leg(agent, extensions[agent], queue=queue),))
        survey_id = await repository.begin_survey(record, start(record, seconds=60 * minute))
        assert survey_id is not None
        await repository.save_answer(survey_id, answer("agent", agent_score))
        await repository.save_answer(survey_id, answer("company", company_score))


async def test_nps_report_counts_answered_scores_only(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Scores 10,9,8,7,6,0 and one unanswered: n=6, 2/2/2, NPS 0.0 (None is no zero)."""
    await store_surveys(repository)

    overall = (await nps_report(database_sessions)).question("agent").overall

    assert (6, 2, 2, 2, 0.0) == (
        overall.n,
        overall.promoters,
        overall.passives,
        overall.detractors,
        overall.nps,
    )


async def test_nps_report_per_question_agent_and_queue(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Each question is broken down by the credited agent and by queue."""
    await store_surveys(repository)

    expected = NpsReport(
        since=None,
        until=None,
        questions=(
            QuestionNps(
                question="agent",
                overall=summary(2, 2, 2),
                by_agent={
                    "Alice": summary(2, 0, 0),
                    "Bob": summary(0, 2, 1),
                    "Carol": summary(0, 0, 1),
                },
                by_queue={"sales": summary(2, 1, 0), "support": summary(0, 1, 2)},
            ),
            QuestionNps(
                question="company",
                overall=summary(1, 0, 1),
                by_agent={"Alice": summary(1, 0, 0), "Bob": summary(0, 0, 1)},
                by_queue={"sales": summary(1, 0, 1)},
            ),
        ),
    )

    assert expected == await nps_report(database_sessions)


async def test_nps_report_over_a_period(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """since is inclusive and until exclusive: minutes 1 and 2 are surveys 2 and 3."""
    await store_surveys(repository)

    report = await nps_report(database_sessions, since=at(60), until=at(180))

    assert summary(1, 1, 0) == report.question("agent").overall


async def test_nps_report_on_an_empty_database_has_no_nps(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Nobody answered: n=0 and NPS None, never a division by zero."""
    report = await nps_report(database_sessions)

    assert [(0, None), (0, None)] == [
        (entry.overall.n, entry.overall.nps) for entry in report.questions
    ]


async def test_a_call_without_agent_or_queue_is_grouped_under_none(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A survey on a call no agent took still counts, in the None group."""
    record = call(queue=None, agents=())
    survey_id = await repository.begin_survey(record, start(record))
    assert survey_id is not None
    await repository.save_answer(survey_id, answer("company", 10))

    report = (await nps_report(database_sessions)).question("company")

    assert ({None: summary(1, 0, 0)}, {None: summary(1, 0, 0)}) == (
        report.by_agent,
        report.by_queue,
    )


async def test_reports_refuse_naive_bounds(
    database_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A bound without a timezone is ambiguous against UTC timestamps."""
    with pytest.raises(ValueError, match="has no timezone"):
        await nps_report(database_sessions, since=datetime(2025, 3, 3))


async def test_export_rows_flatten_each_survey_with_its_call(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """One row per survey, oldest first, with the chain and the credited last agent."""
    transferred = call(
        "B",
        agents=(
            leg("Agent One", 1001, connected=30, talk_seconds=40, ended_by=HangupSide.TRANSFER),
            leg("Agent Two", 1002, queue=None, connected=75, talk_seconds=20),
        ),
        talk_seconds=60,
        ended_by=HangupSide.AGENT,
        transferred=True,
        partial=True,
    )
    later = await repository.begin_survey(
        transferred,
        dataclasses.replace(start(transferred, seconds=200), opted_in=True, initiated_by="agent"),
    )
    assert later is not None
    await repository.save_answer(later, answer("agent", 10, attempts=2))
    await repository.finish_survey(later, SurveyStatus.PARTIAL, at(230))
    plain = call("A", caller_name=None)
    earlier = await repository.begin_survey(plain, start(plain, seconds=100))
    assert earlier is not None
    await repository.save_answer(earlier, answer("agent", None, attempts=3))
    await repository.save_answer(earlier, answer("company", 0))
    await repository.finish_survey(earlier, SurveyStatus.COMPLETED, at(150))

    expected = [
        ExportRow(
            pbx=PBX,
            linkedid="A",
            caller_number="+4930123456",
            caller_name=None,
            queue="sales",
            agent_name="Agent One",
            agent_interface="PJSIP/1001",
            agents="Agent One",
            hold_seconds=12,
            talk_seconds=None,
            ended_by=None,
            agent_score=None,
            company_score=0,
            agent_attempts=3,
            company_attempts=1,
            status=SurveyStatus.COMPLETED,
            partial=False,
            started_at=at(100),
            finished_at=at(150),
            transferred=False,
            opted_in=None,
            initiated_by=None,
        ),
        ExportRow(
            pbx=PBX,
            linkedid="B",
            caller_number="+4930123456",
            caller_name="Ada Caller",
            queue="sales",
            agent_name="Agent Two",
            agent_interface="PJSIP/1002",
            agents="Agent One > Agent Two",
            hold_seconds=12,
            talk_seconds=60,
            ended_by=HangupSide.AGENT,
            agent_score=10,
            company_score=None,
            agent_attempts=2,
            company_attempts=None,
            status=SurveyStatus.PARTIAL,
            partial=True,
            started_at=at(200),
            finished_at=at(230),
            transferred=True,
            opted_in=True,
            initiated_by="agent",
        ),
    ]

    assert expected == await export_rows(database_sessions)


async def test_export_rows_over_a_period(
    repository: CommittedWrites, database_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """since is inclusive and until exclusive."""
    await store_surveys(repository)

    rows = await export_rows(database_sessions, since=at(60), until=at(180))

    assert ["2", "3"] == [row.linkedid for row in rows]


def export_row(**fields: object) -> ExportRow:
    values: dict[str, object] = {
        "pbx": PBX,
        "linkedid": "1741000000.1",
        "caller_number": "1234",
        "caller_name": "Ada",
        "queue": "sales",
        "agent_name": "Agent Two",
        "agent_interface": "PJSIP/1002",
        "agents": "Agent One > Agent Two",
        "hold_seconds": 12,
        "talk_seconds": 60,
        "ended_by": HangupSide.CALLER,
        "agent_score": 9,
        "company_score": None,
        "agent_attempts": 1,
        "company_attempts": 2,
        "status": SurveyStatus.COMPLETED,
        "partial": False,
        "started_at": at(0),
        "finished_at": None,
        "transferred": False,
        "opted_in": None,
        "initiated_by": None,
    }
    values.update(fields)
    return ExportRow(**values)  # type: ignore[arg-type]  # **values: ExportRow fields, by name


def test_csv_has_a_header_of_field_names_and_plain_cells() -> None:
    """None is empty, booleans are true/false, times ISO 8601, enums their value."""
    expected = (
        "pbx,linkedid,caller_number,caller_name,queue,agent_name,agent_interface,agents,"
        "hold_seconds,talk_seconds,ended_by,agent_score,company_score,agent_attempts,"
        "company_attempts,status,partial,started_at,finished_at,transferred,opted_in,"
        "initiated_by,csat,fcr,ces,comment_file,comment_seconds\r\n"
        "pbx-lab,1741000000.1,1234,Ada,sales,Agent Two,PJSIP/1002,Agent One > Agent Two,"
        "12,60,caller,9,,1,2,completed,false,2025-03-03T09:00:00+00:00,,true,true,agent,"
        ",,,,\r\n"
    )

    assert expected == rows_to_csv(
        [export_row(transferred=True, opted_in=True, initiated_by="agent")]
    )


@pytest.mark.parametrize(
    ("caller_name", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        (" =1+1", "' =1+1"),
        ("\u3000=1+1", "'\u3000=1+1"),
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\n=1", "'\n=1"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        (" Ada", " Ada"),
    ],
)
def test_csv_defuses_formulas_in_text_cells(caller_name: str, cell: str) -> None:
    """Caller ids come from the caller; a spreadsheet must not run them."""
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv([export_row(caller_name=caller_name)]))))

    assert cell == parsed[0]["caller_name"]


def test_json_keeps_types_unicode_and_iso_timestamps() -> None:
    """Numbers stay numbers, None is null, names keep their script."""
    row = export_row(caller_name="Ñandú Петров", finished_at=at(90))

    document = json.loads(rows_to_json([row]))

    assert [
        {
            "pbx": "pbx-lab",
            "linkedid": "1741000000.1",
            "caller_number": "1234",
            "caller_name": "Ñandú Петров",
            "queue": "sales",
            "agent_name": "Agent Two",
            "agent_interface": "PJSIP/1002",
            "agents": "Agent One > Agent Two",
            "hold_seconds": 12,
            "talk_seconds": 60,
            "ended_by": "caller",
            "agent_score": 9,
            "company_score": None,
            "agent_attempts": 1,
            "company_attempts": 2,
            "status": "completed",
            "partial": False,
            "started_at": "2025-03-03T09:00:00+00:00",
            "finished_at": "2025-03-03T09:01:30+00:00",
            "transferred": False,
            "opted_in": None,
            "initiated_by": None,
            "csat": None,
            "fcr": None,
            "ces": None,
            "comment_file": None,
            "comment_seconds": None,
        }
    ] == document
    assert "Ñandú Петров" in rows_to_json([row])
