"""The report endpoints as data: path, parameters, meaning, response shape.

The handlers validate their requests with these parameter lists and the OpenAPI
document is generated from them, which is what keeps the document true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.adapters.web.params import MAX_NAME_LENGTH, Param
from ivr.adapters.web.stats import OUTLIER_RULE
from ivr.ports import RESPONSE_FIELDS

QUESTION_CHOICES = ("agent", "company")
MAX_PAGE = 500
DEFAULT_PAGE = 50

FROM = Param(
    "from",
    "date",
    "First day of the period, included, in the report zone (default: 29 days before `to`).",
)
TO = Param(
    "to", "date", "Last day of the period, included, in the report zone (default: today there)."
)
TZ = Param(
    "tz",
    "zone",
    "The IANA time zone whose days `from`, `to`, today and the day, week and month groups "
    "are (default: [reports] timezone). The rollups are kept in the configured zone's "
    "days, so another zone is computed from the stored surveys: the same figures as "
    "configuring that zone, but slower over long periods.",
)
AGENT = Param("agent", "name", f"Only this agent (exact name, 1-{MAX_NAME_LENGTH} characters).")
QUEUE = Param("queue", "name", f"Only this queue (exact name, 1-{MAX_NAME_LENGTH} characters).")
MIN_N = Param(
    "min_n",
    "int",
    "Rows with fewer answers than this are flagged `too_few` (default: [web] min_n).",
    minimum=1,
    maximum=1_000_000,
)
QUESTIONS = Param(
    "question",
    "choice",
    "Only this question (default: both).",
    choices=QUESTION_CHOICES,
)

ELIGIBLE_NOTE = (
    "Funnel steps: `handled` = calls an agent answered (counted on the day the call "
    "started; a call rebuilt without its start time is not counted); `eligible` = "
    "handled calls the survey policy decided to survey (its stored decision is "
    "`eligible`; calls stored before the policy existed count when they were not "
    "abandoned and not ended by the caller hanging up on the agent); `offered` and "
    "`started` = surveys begun (counted on the day the survey started); `completed` = "
    "surveys that ended `completed` or `partial` with at least one answered question. "
    "`response_rate` = completed / offered and `completion_rate` = completed / eligible, "
    "in percent."
)
NPS_NOTE = (
    "NPS = % promoters (9-10) - % detractors (0-6) over answered questions only. "
    "`margin` is the 95% margin of error in NPS points: 1.96 * sqrt((p_prom + p_det - "
    "(p_prom - p_det)^2) / n) * 100. NPS and margin have one decimal; both are null "
    "when n is 0. Days are the report zone's days (see `tz`) of the survey's start."
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    name: str
    summary: str
    description: str
    params: tuple[Param, ...]
    response: Mapping[str, Any]
    media_type: str = "application/json"
    tags: tuple[str, ...] = field(default=("reports",))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _rows(item: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["period", "rows", *extra],
        "properties": {"period": _ref("Period"), "rows": {"type": "array", "items": item}, **extra},
    }


NPS = Endpoint(
    path="/api/nps",
    name="nps",
    summary="NPS per question, grouped by agent, queue, day, week or month",
    description=NPS_NOTE
    + " Weeks start on Monday; week and month groups are named by their first day.",
    params=(
        FROM,
        TO,
        TZ,
        Param(
            "group_by",
            "choice",
            "How rows are grouped; `all` is one row per question for the whole period.",
            choices=("all", "agent", "queue", "day", "week", "month"),
            default="day",
        ),
        QUESTIONS,
        AGENT,
        QUEUE,
        MIN_N,
    ),
    response=_rows(_ref("NpsRow"), group_by={"type": "string"}, min_n={"type": "integer"}),
)
AGENT_VS_COMPANY = Endpoint(
    path="/api/agent-vs-company",
    name="agent-vs-company",
    summary="Per agent: the agent question beside the company question on the same calls",
    description=(
        "Only surveys where the caller answered both questions count, so `gap` (agent NPS "
        "minus company NPS) compares the same callers. A large negative gap points at the "
        "agent, a positive one at the company. " + NPS_NOTE
    ),
    params=(FROM, TO, TZ, QUEUE, MIN_N),
    response=_rows(_ref("PairedRow"), min_n={"type": "integer"}),
)
CHAMPIONS = Endpoint(
    path="/api/champions",
    name="champions",
    summary="Top and bottom agents on the agent question",
    description=(
        "Agents with at least `min_n` answers, ranked by agent-question NPS (ties: more "
        "answers first). With fewer than 2n agents the two lists overlap. " + NPS_NOTE
    ),
    params=(
        FROM,
        TO,
        TZ,
        Param(
            "n", "int", "Agents in each list (default: [web] champions).", minimum=1, maximum=100
        ),
        QUEUE,
        MIN_N,
    ),
    response={
        "type": "object",
        "required": ["period", "min_n", "top", "bottom"],
        "properties": {
            "period": _ref("Period"),
            "min_n": {"type": "integer"},
            "top": {"type": "array", "items": _ref("AgentNps")},
            "bottom": {"type": "array", "items": _ref("AgentNps")},
        },
    },
)
NPS_BY_DURATION = Endpoint(
    path="/api/nps-by-duration",
    name="nps-by-duration",
    summary="NPS by hold-time or talk-time bucket",
    description=(
        "Buckets in seconds, [low, high); `high` null is the open last bucket, `low` null "
        "the calls whose duration is unknown. Hold: 0, 30, 60, 120, 300, 600. Talk: 0, 60, "
        "180, 300, 600, 1200. " + NPS_NOTE
    ),
    params=(
        FROM,
        TO,
        TZ,
        Param("measure", "choice", "Which duration.", choices=("hold", "talk"), default="hold"),
        QUESTIONS,
        QUEUE,
        MIN_N,
    ),
    response=_rows(_ref("BucketRow"), measure={"type": "string"}, min_n={"type": "integer"}),
)
FUNNEL = Endpoint(
    path="/api/funnel",
    name="funnel",
    summary="Survey funnel per agent or per queue, with response rates",
    description=ELIGIBLE_NOTE + " Rows of agents flagged by /api/outliers carry `outlier: true`.",
    params=(
        FROM,
        TO,
        TZ,
        Param(
            "by",
            "choice",
            "One row per agent or per queue.",
            choices=("agent", "queue"),
            default="agent",
        ),
    ),
    response=_rows(_ref("FunnelRow"), by={"type": "string"}),
)
OUTLIERS = Endpoint(
    path="/api/outliers",
    name="outliers",
    summary="Agents whose completion rate or score is an outlier in their queue",
    description=OUTLIER_RULE + " " + ELIGIBLE_NOTE,
    params=(
        FROM,
        TO,
        TZ,
        MIN_N,
        Param(
            "z",
            "float",
            "The |z| above which an agent is flagged (default: [web] outlier_z).",
            minimum=0.5,
            maximum=10,
        ),
    ),
    response=_rows(
        _ref("OutlierRow"), rule={"type": "string"}, min_n={"type": "integer"}, z={"type": "number"}
    ),
)
_RESPONSE_FILTERS = (
    FROM,
    TO,
    TZ,
    AGENT,
    QUEUE,
    Param(
        "question",
        "choice",
        "Which question min_score/max_score apply to (default: either).",
        choices=QUESTION_CHOICES,
    ),
    Param("min_score", "int", "Lowest score, included.", minimum=0, maximum=10),
    Param("max_score", "int", "Highest score, included.", minimum=0, maximum=10),
)
RESPONSES_NOTE = (
    "Surveys with at least one answered question, newest first. A viewer sees caller "
    "numbers and names masked."
)
RESPONSES = Endpoint(
    path="/api/responses",
    name="responses",
    summary="The responses, one page at a time",
    description=RESPONSES_NOTE
    + " Pass `next` back as `cursor` for the following page; null means the last page.",
    params=(
        *_RESPONSE_FILTERS,
        Param("limit", "int", "Rows per page.", minimum=1, maximum=MAX_PAGE, default=DEFAULT_PAGE),
        Param("cursor", "cursor", "The `next` value of the previous page."),
    ),
    response={
        "type": "object",
        "required": ["period", "rows", "next"],
        "properties": {
            "period": _ref("Period"),
            "rows": {"type": "array", "items": _ref("Response")},
            "next": {"type": ["string", "null"]},
        },
    },
)
RESPONSES_CSV = Endpoint(
    path="/api/responses.csv",
    name="responses-csv",
    summary="The responses as CSV",
    description=(
        RESPONSES_NOTE + " Every row matching the filters, streamed. Cells beginning with "
        "= + - @ (or tab, carriage return) get a leading ' so a spreadsheet shows them "
        "as text instead of running them as formulas."
    ),
    params=_RESPONSE_FILTERS,
    response={"type": "string"},
    media_type="text/csv",
)

REPORTS: tuple[Endpoint, ...] = (
    NPS,
    AGENT_VS_COMPANY,
    CHAMPIONS,
    NPS_BY_DURATION,
    FUNNEL,
    OUTLIERS,
    RESPONSES,
    RESPONSES_CSV,
)

_NPS_FIGURES = {
    "n": {"type": "integer", "description": "Answered questions."},
    "promoters": {"type": "integer"},
    "passives": {"type": "integer"},
    "detractors": {"type": "integer"},
    "nps": {"type": ["number", "null"]},
    "margin": {"type": ["number", "null"], "description": "95% margin of error, NPS points."},
    "too_few": {"type": "boolean", "description": "n is below min_n."},
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    },
    "Period": {
        "type": "object",
        "required": ["from", "to"],
        "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
        },
    },
    "NpsFigures": {"type": "object", "required": list(_NPS_FIGURES), "properties": _NPS_FIGURES},
    "NpsRow": {
        "type": "object",
        "required": ["group", "question", *_NPS_FIGURES],
        "properties": {
            "group": {**_NULLABLE_TEXT, "description": "Agent, queue, or first day of the period."},
            "question": {"type": "string"},
            **_NPS_FIGURES,
        },
    },
    "AgentNps": {
        "type": "object",
        "required": ["agent", *_NPS_FIGURES],
        "properties": {"agent": {"type": "string"}, **_NPS_FIGURES},
    },
    "PairedRow": {
        "type": "object",
        "required": ["agent", "n", "too_few", "agent_question", "company_question", "gap"],
        "properties": {
            "agent": _NULLABLE_TEXT,
            "n": {"type": "integer", "description": "Surveys with both questions answered."},
            "too_few": {"type": "boolean"},
            "agent_question": _ref("NpsFigures"),
            "company_question": _ref("NpsFigures"),
            "gap": {**_NULLABLE_NUMBER, "description": "Agent NPS minus company NPS."},
        },
    },
    "BucketRow": {
        "type": "object",
        "required": ["low", "high", "label", "question", *_NPS_FIGURES],
        "properties": {
            "low": _NULLABLE_INT,
            "high": _NULLABLE_INT,
            "label": {"type": "string"},
            "question": {"type": "string"},
            **_NPS_FIGURES,
        },
    },
    "FunnelRow": {
        "type": "object",
        "required": [
            "group",
            "handled",
            "eligible",
            "offered",
            "started",
            "completed",
            "response_rate",
            "completion_rate",
            "outlier",
        ],
        "properties": {
            "group": _NULLABLE_TEXT,
            "handled": {"type": "integer"},
            "eligible": {"type": "integer"},
            "offered": {"type": "integer"},
            "started": {"type": "integer"},
            "completed": {"type": "integer"},
            "response_rate": _NULLABLE_NUMBER,
            "completion_rate": _NULLABLE_NUMBER,
            "outlier": {"type": "boolean"},
        },
    },
    "OutlierRow": {
        "type": "object",
        "required": ["agent", "queue", "metric", "value", "rest_value", "n", "rest_n", "z"],
        "properties": {
            "agent": {"type": "string"},
            "queue": _NULLABLE_TEXT,
            "metric": {"type": "string", "enum": ["completion_rate", "nps"]},
            "value": {"type": "number"},
            "rest_value": {"type": "number", "description": "The rest of the queue."},
            "n": {"type": "integer"},
            "rest_n": {"type": "integer"},
            "z": {"type": "number"},
        },
    },
    "Response": {
        "type": "object",
        "required": list(RESPONSE_FIELDS),
        "properties": {
            "survey_id": {"type": "integer"},
            "started_at": {"type": "string", "format": "date-time"},
            "status": {
                "type": "string",
                "enum": [
                    "in_progress",
                    "completed",
                    "partial",
                    "no_answer",
                    "hung_up",
                    "interrupted",
                ],
            },
            "pbx": {"type": "string"},
            "linkedid": {"type": "string"},
            "caller_number": _NULLABLE_TEXT,
            "caller_name": _NULLABLE_TEXT,
            "queue": _NULLABLE_TEXT,
            "agent": _NULLABLE_TEXT,
            "hold_seconds": _NULLABLE_INT,
            "talk_seconds": _NULLABLE_INT,
            "agent_score": _NULLABLE_INT,
            "company_score": _NULLABLE_INT,
            "transferred": {"type": "boolean", "description": "The call was transferred."},
            "opted_in": {
                "type": ["boolean", "null"],
                "description": "The caller pressed to take part; null where the flow did not ask.",
            },
            "initiated_by": {
                **_NULLABLE_TEXT,
                "description": "Who started the survey (the dialplan's initiated=, e.g. agent); "
                "null for the usual hand-over when the agent hangs up.",
            },
            "csat": {**_NULLABLE_INT, "description": "Satisfaction 1-5 (not part of NPS)."},
            "fcr": {**_NULLABLE_INT, "description": "Resolved on this call: 1 yes, 0 no."},
            "ces": {**_NULLABLE_INT, "description": "Customer effort 1-7."},
            "comment_file": {
                **_NULLABLE_TEXT,
                "description": "Recorded comment's file stem; null when none or purged.",
            },
            "comment_seconds": {**_NULLABLE_NUMBER, "description": "Recorded comment's length."},
        },
    },
}
