"""The durable spool: order, crash leftovers, corrupt lines, one owner at a time."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ivr.core.domain import Comment, SurveyStatus
from storage.spool import Spool, SpoolError, linkedid_in, spool_path
from storage.write_requests import (
    BeginSurvey,
    FinishSurvey,
    RecordDecision,
    SaveAnswer,
    SaveCall,
    SaveComment,
    Write,
    decode,
    encode,
)
from tests.storage.builders import answer, at, call, leg, start


def identity(record: dict[str, Any]) -> dict[str, Any]:
    return record


def test_records_read_back_in_the_order_appended(tmp_path: Path) -> None:
    """Appends from several batches come back in one sequence, and the depth counts them."""
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([{"n": 1}, {"n": 2}])
    spool.append([{"n": 3}])

    assert ([{"n": 1}, {"n": 2}, {"n": 3}], 3) == (spool.read(identity), spool.depth)


def test_a_spool_left_by_another_run_is_found_with_its_depth(tmp_path: Path) -> None:
    """After a restart the pending lines are counted before anything is read."""
    path = tmp_path / "spool.jsonl"
    first = Spool(path)
    first.append([{"n": 1}, {"n": 2}])
    first.close()

    assert 2 == Spool(path).depth


def test_clear_removes_the_file_and_resets_the_depth(tmp_path: Path) -> None:
    """Once replayed, nothing is left to replay again."""
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([{"n": 1}])

    spool.clear()

    assert (False, 0, []) == (spool.path.exists(), spool.depth, spool.read(identity))


@pytest.mark.parametrize(
    "write",
    [
        SaveCall(call(agents=(leg("Agent One", 1001),), ended_at=1741000100.5)),
        BeginSurvey(call(), start(call()), provisional=-17),
        SaveAnswer(-17, answer("agent", None, attempts=3), "1741000000.1"),
        SaveAnswer(12, answer("company", 0), "1741000000.1"),
        FinishSurvey(12, SurveyStatus.PARTIAL, at(180), "1741000000.1"),
        SaveComment(
            -17, Comment("pbx1-1741000000.1", "wav", 7.25, "dtmf", at(170)), "1741000000.1"
        ),
        RecordDecision(call(caller_key="15550001111"), "cooldown"),
    ],
    ids=["call", "begin", "unanswered", "score 0", "finish", "comment", "decision"],
)
def test_every_write_survives_the_round_trip_through_a_spool_line(write: Write) -> None:
    """What is spooled is exactly what is replayed."""
    line = json.dumps(encode(write))

    assert write == decode(json.loads(line))


def test_corrupt_lines_are_kept_aside_and_reported_with_their_linkedid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage, a torn line and an unknown write go to `.rejected`, once; the
    readable lines around them are replayed."""
    path = tmp_path / "spool.jsonl"
    good = encode(SaveAnswer(5, answer("agent", 9), "1741000000.1"))
    torn = json.dumps(encode(SaveAnswer(5, answer("company", 8), "1741000000.2")))[:60]
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                "not json at all",
                torn,
                json.dumps({"op": "drop-table", "linkedid": "1741000000.3"}),
                json.dumps(good),
            ]
        )
        + "\n"
    )
    spool = Spool(path)

    with caplog.at_level(logging.ERROR, logger="storage.spool"):
        first = spool.read(decode)
    second = spool.read(decode)

    assert [decode(good), decode(good)] == first == second
    assert ["not json at all", torn, '{"op": "drop-table", "linkedid": "1741000000.3"}'] == (
        spool.rejected_path.read_text().splitlines()
    )
    named = [message.split("Linkedid=")[1].split(")")[0] for message in caplog.messages]
    assert ["-", "1741000000.2", "1741000000.3"] == named
    assert 2 == spool.depth


def test_a_torn_last_line_does_not_swallow_the_next_append(tmp_path: Path) -> None:
    """A crash mid-append leaves no newline; the next line still starts on its own."""
    path = tmp_path / "spool.jsonl"
    path.write_text('{"n": 1}\n{"n": 2, "linkedid": "17410')
    spool = Spool(path)

    spool.append([{"n": 3}])

    assert [{"n": 1}, {"n": 3}] == spool.read(identity)
    assert ['{"n": 2, "linkedid": "17410'] == spool.rejected_path.read_text().splitlines()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"op":"answer","linkedid":"1741000000.7","val', "1741000000.7"),
        ('{"linkedid" : "abc"}', "abc"),
        ("garbage", "-"),
    ],
)
def test_the_linkedid_of_a_corrupt_line_is_read_when_possible(line: str, expected: str) -> None:
    """An operator looking at the log learns which call lost a write."""
    assert expected == linkedid_in(line)


def test_two_processes_cannot_share_one_spool(tmp_path: Path) -> None:
    """Two services replaying and removing one file would lose each other's lines."""
    first = Spool(tmp_path / "spool.jsonl")
    first.append([{"n": 1}])
    second = Spool(tmp_path / "spool.jsonl")

    with pytest.raises(SpoolError, match="in use by another ivr-survey process"):
        second.append([{"n": 2}])


@pytest.mark.parametrize(
    ("spool_dir", "environ", "folder"),
    [
        ("/srv/spool", {"XDG_STATE_HOME": "/home/ivr/.state"}, Path("/srv/spool")),
        ("", {"XDG_STATE_HOME": "/home/ivr/.state"}, Path("/home/ivr/.state/ivr-survey/spool")),
        ("", {}, Path("spool")),
    ],
    ids=["configured", "XDG_STATE_HOME", "working directory"],
)
def test_the_spool_directory_is_configured_or_platform_default(
    spool_dir: str, environ: dict[str, str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[database] spool_dir wins; else $XDG_STATE_HOME/ivr-survey/spool; else ./spool."""
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    assert folder == spool_path(spool_dir, "sqlite:///x.db").parent


def test_each_database_has_its_own_spool_whatever_its_password() -> None:
    """A spool is never replayed into another database; a new password keeps it."""
    first = spool_path("/s", "postgresql://ivr:old@db/ivr")

    assert (first, False) == (
        spool_path("/s", "postgresql://ivr:new@db/ivr"),
        first == spool_path("/s", "postgresql://ivr:old@db/other"),
    )
