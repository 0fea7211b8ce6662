"""The write statements of the survey store, built once per dialect.

Building an INSERT ... ON CONFLICT with a dozen COALESCE clauses costs more
Python than running it: measured at about a millisecond per call on a busy
loop, paid again for every begin_survey and every answer. Here each statement
is built once, with bound parameters only, so SQLAlchemy compiles it once and
every later execution is a compiled-cache hit. The merge rules of a call, a
leg and an answer are these statements: `storage.upserts` and
`storage.grouped_writes` only bind rows to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ivr.core.policy import Reason
from storage.models import Base, Call, CallAgent, Survey, SurveyAnswer, SurveyComment

_Insert = Callable[[sa.Table], Any]
"""The dialect's `insert` (postgresql's or sqlite's: both have ON CONFLICT)."""

_CALL_MERGED_COLUMNS = (
    "caller_uniqueid",
    "caller_channel",
    "caller_number",
    "caller_name",
    "caller_key",
    "queue",
    "hold_seconds",
    "talk_seconds",
    "ended_by",
    "started_at",
    "answered_at",
    "ended_at",
)
_LEG_MERGED_COLUMNS = ("queue", "hold_seconds", "ring_seconds", "talk_seconds", "ended_by")
_LEG_REPLACED_COLUMNS = ("name", "interface", "channel", "connected_at")
# The one decision a later request never replaces.
ELIGIBLE = Reason.ELIGIBLE.value


def _table(model: type[Base]) -> sa.Table:
    return cast(sa.Table, model.__table__)


def _keep_known(table: sa.Table, excluded: Any, columns: Sequence[str]) -> dict[str, Any]:
    """SET clauses where the incoming value wins unless it is NULL (unknown)."""
    return {name: sa.func.coalesce(excluded[name], table.c[name]) for name in columns}


@dataclass(frozen=True, slots=True)
class WriteStatements:
    """Every write statement of one dialect; see `statements_for`."""

    merge_call: Any
    stored_legs: Any
    stored_legs_of_calls: Any
    merge_leg: Any
    credit_last_agent: Any
    open_survey: Any
    surveys_of_calls: Any
    existing_surveys: Any
    upsert_answer: Any
    finish_survey: Any
    insert_comment: Any


@cache
def statements_for(dialect: str) -> WriteStatements:
    """The statements for "postgresql" or "sqlite", built on first use.

    Both dialects spell ON CONFLICT the same way (`on_conflict_do_update`,
    `excluded`), so the statements are written once for both.
    """
    insert: _Insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return WriteStatements(
        **_call_statements(insert),
        **_leg_statements(insert),
        **_survey_statements(insert),
        **_answer_statements(insert),
        **_comment_statements(insert),
    )


def _call_statements(insert: _Insert) -> dict[str, Any]:
    calls = _table(Call)
    # Field by field the later record wins, except that None (not known) never
    # replaces a known value. The domain's booleans default to False, which
    # cannot tell "no" from "not known", so `abandoned` and `transferred` stay
    # True once seen, and `partial` stays True only while every record saved
    # was partial: one record built from the whole call's events completes it.
    # The first record that ends the call decides it, though: a live snapshot
    # (saved when the survey began) cannot know that AMI was lost before the end.
    # The policy decision (NULL in a save that carries none, so the AMI path
    # cannot erase it) replaces the stored one, except that 'eligible' stays:
    # a survey that began keeps counting in the funnel.
    call_insert = insert(calls)
    excluded = call_insert.excluded
    merge_call = call_insert.on_conflict_do_update(
        index_elements=[calls.c.pbx, calls.c.linkedid],
        set_={
            **_keep_known(calls, excluded, _CALL_MERGED_COLUMNS),
            "abandoned": sa.or_(calls.c.abandoned, excluded.abandoned),
            "transferred": sa.or_(calls.c.transferred, excluded.transferred),
            "partial": sa.case(
                (
                    sa.and_(calls.c.ended_at.is_(None), excluded.ended_at.is_not(None)),
                    excluded.partial,
                ),
                else_=sa.and_(calls.c.partial, excluded.partial),
            ),
            "policy_decision": sa.case(
                (calls.c.policy_decision == ELIGIBLE, calls.c.policy_decision),
                else_=sa.func.coalesce(excluded.policy_decision, calls.c.policy_decision),
            ),
            "updated_at": excluded.updated_at,
        },
    ).returning(
        calls.c.id,
        calls.c.created_at,
        calls.c.agent_name,
        calls.c.agent_interface,
        calls.c.pbx,
        calls.c.linkedid,
    )
    return {"merge_call": merge_call}


def _leg_statements(insert: _Insert) -> dict[str, Any]:
    calls, agents = _table(Call), _table(CallAgent)
    leg_insert = insert(agents)
    merge_leg = leg_insert.on_conflict_do_update(
        index_elements=[agents.c.call_id, agents.c.position],
        set_={
            **{name: leg_insert.excluded[name] for name in _LEG_REPLACED_COLUMNS},
            **_keep_known(agents, leg_insert.excluded, _LEG_MERGED_COLUMNS),
        },
    )
    call_id: sa.BindParameter[int] = sa.bindparam("call_id", type_=sa.Integer)
    leg_columns = (
        agents.c.call_id,
        agents.c.position,
        agents.c.name,
        agents.c.channel,
        agents.c.interface,
        agents.c.connected_at,
    )
    stored_legs = (
        sa.select(*leg_columns).where(agents.c.call_id == call_id).order_by(agents.c.position)
    )
    call_ids: sa.BindParameter[list[int]] = sa.bindparam("call_ids", expanding=True)
    stored_legs_of_calls = (
        sa.select(*leg_columns)
        .where(agents.c.call_id.in_(call_ids))
        .order_by(agents.c.call_id, agents.c.position)
    )
    credit_last_agent = (
        sa.update(calls)
        .where(calls.c.id == call_id)
        .values(agent_name=sa.bindparam("agent_name"), agent_interface=sa.bindparam("interface"))
    )
    return {
        "stored_legs": stored_legs,
        "stored_legs_of_calls": stored_legs_of_calls,
        "merge_leg": merge_leg,
        "credit_last_agent": credit_last_agent,
    }


def _survey_statements(insert: _Insert) -> dict[str, Any]:
    surveys = _table(Survey)
    call_ids: sa.BindParameter[list[int]] = sa.bindparam("call_ids", expanding=True)
    open_survey = (
        insert(surveys)
        .on_conflict_do_nothing(index_elements=[surveys.c.call_id])
        .returning(surveys.c.id, surveys.c.call_id)
    )
    survey_columns = (
        surveys.c.id,
        surveys.c.call_id,
        surveys.c.uniqueid,
        surveys.c.channel,
        surveys.c.started_at,
    )
    surveys_of_calls = sa.select(*survey_columns).where(surveys.c.call_id.in_(call_ids))
    existing_surveys = sa.select(surveys.c.id).where(
        surveys.c.id.in_(sa.bindparam("survey_ids", expanding=True))
    )

    finish_survey = (
        sa.update(surveys)
        .where(surveys.c.id == sa.bindparam("survey_id"))
        .values(status=sa.bindparam("status"), finished_at=sa.bindparam("finished_at"))
    )
    return {
        "open_survey": open_survey,
        "surveys_of_calls": surveys_of_calls,
        "existing_surveys": existing_surveys,
        "finish_survey": finish_survey,
    }


def _answer_statements(insert: _Insert) -> dict[str, Any]:
    answers = _table(SurveyAnswer)
    # A score already stored is never replaced by None: a keypress the caller
    # made is a fact, and a later "gave up on this question" cannot undo it.
    answer_insert = insert(answers)
    upsert_answer = answer_insert.on_conflict_do_update(
        index_elements=[answers.c.survey_id, answers.c.question],
        set_={
            "value": sa.func.coalesce(answer_insert.excluded.value, answers.c.value),
            "attempts": answer_insert.excluded.attempts,
            "answered_at": answer_insert.excluded.answered_at,
        },
    )
    return {"upsert_answer": upsert_answer}


def _comment_statements(insert: _Insert) -> dict[str, Any]:
    # One comment per survey: a replayed write (spool) must not add a second.
    comments = _table(SurveyComment)
    insert_comment = insert(comments).on_conflict_do_nothing(index_elements=[comments.c.survey_id])
    return {"insert_comment": insert_comment}
