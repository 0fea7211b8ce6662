"""Where the writer cuts a batch: writes on different rows share a group.

Pure: `groups` only looks at which rows each write touches. A group's writes
run as one statement per kind, in no particular order, so two writes of one
row (whose order matters) must never share one.
"""

from __future__ import annotations

import pytest

from ivr.core.domain import CallRecord, Comment, SurveyStatus
from storage.grouped_writes import groups
from storage.write_requests import (
    BeginSurvey,
    FinishSurvey,
    RecordDecision,
    SaveAnswer,
    SaveCall,
    SaveComment,
    Write,
)
from tests.storage.builders import answer, at, call, start

ONE, TWO = call("1741000000.1"), call("1741000000.2")


def begin(record: CallRecord = ONE, provisional: int | None = None) -> BeginSurvey:
    return BeginSurvey(record, start(record), provisional=provisional)


def comment(survey_id: int) -> SaveComment:
    return SaveComment(survey_id, Comment("pbx1-1741000000.1", "wav", 3.0, "dtmf", at(150)))


@pytest.mark.parametrize(
    ("writes", "expected"),
    [
        ([SaveCall(ONE), SaveCall(TWO), RecordDecision(TWO, "eligible")], [[0, 1], [2]]),
        ([RecordDecision(ONE, "eligible"), begin(ONE)], [[0], [1]]),
        ([begin(ONE), begin(TWO), SaveCall(ONE)], [[0, 1], [2]]),
        ([SaveAnswer(7, answer("agent", 9)), SaveAnswer(7, answer("company", 8))], [[0, 1]]),
        ([SaveAnswer(7, answer("agent", 4)), SaveAnswer(7, answer("agent", 2))], [[0], [1]]),
        (
            [SaveAnswer(7, answer("agent", 9)), FinishSurvey(7, SurveyStatus.COMPLETED, at(9))],
            [[0, 1]],
        ),
        ([begin(ONE, provisional=-5), SaveAnswer(-5, answer("agent", 9))], [[0], [1]]),
        ([begin(ONE, provisional=-5), SaveAnswer(-6, answer("agent", 9))], [[0, 1]]),
        ([comment(-5), comment(-5)], [[0], [1]]),
        ([begin(ONE), SaveAnswer(7, answer("agent", 9)), SaveCall(TWO)], [[0, 1, 2]]),
    ],
    ids=[
        "a second save of one call starts a group",
        "a decision and the start of the same call",
        "the final record after the starts",
        "two questions of one survey",
        "one question saved twice keeps its order",
        "an answer and the status of its survey",
        "a spooled survey's answer waits for its start",
        "another spooled survey's answer does not",
        "a spooled survey's second comment",
        "writes on different rows",
    ],
)
def test_a_batch_is_cut_where_a_write_touches_a_row_already_in_the_group(
    writes: list[Write], expected: list[list[int]]
) -> None:
    """Expected: the positions of the writes in each group, in batch order."""
    assert expected == [group.positions for group in groups(writes)]
