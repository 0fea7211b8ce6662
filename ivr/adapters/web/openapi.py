"""The OpenAPI 3.1 document of the API, generated from `ivr.adapters.web.spec`.

Generated rather than written so that it describes exactly the parameters the
handlers accept; a test checks it against the app's routes as well.
"""

from __future__ import annotations

from typing import Any

from ivr.adapters.web.params import EARLIEST, LATEST, ZONE_PATTERN, Param
from ivr.adapters.web.spec import REPORTS, SCHEMAS, Endpoint

SESSION_COOKIE = "ivr_survey_session"
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _schema(param: Param, zone: str) -> dict[str, Any]:
    if param.kind == "date":
        return {
            "type": "string",
            "format": "date",
            "description": f"YYYY-MM-DD, {EARLIEST.isoformat()} to {LATEST.isoformat()}.",
        }
    if param.kind == "zone":
        return {"type": "string", "pattern": ZONE_PATTERN, "default": zone}
    schema: dict[str, Any]
    if param.kind in ("int", "float"):
        schema = {"type": "integer" if param.kind == "int" else "number"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    elif param.kind == "choice":
        schema = {"type": "string", "enum": list(param.choices)}
    elif param.kind == "name":
        schema = {"type": "string", "minLength": 1, "maxLength": 200}
    else:
        schema = {"type": "string", "pattern": "^[A-Za-z0-9_-]{4,64}$"}
    if param.default is not None:
        schema["default"] = param.default
    return schema


def _operation(endpoint: Endpoint, zone: str) -> dict[str, Any]:
    return {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "description": endpoint.description,
        "tags": list(endpoint.tags),
        "parameters": [
            {
                "name": param.name,
                "in": "query",
                "required": False,
                "description": param.description,
                "schema": _schema(param, zone),
            }
            for param in endpoint.params
        ],
        "responses": {
            "200": {
                "description": "The report.",
                "content": {endpoint.media_type: {"schema": endpoint.response}},
            },
            "400": {"description": "A parameter is invalid or unknown.", "content": _ERROR},
            "401": {"description": "No valid token or session.", "content": _ERROR},
            "503": {"description": "The database cannot be read right now.", "content": _ERROR},
        },
    }


def _healthz() -> dict[str, Any]:
    return {
        "operationId": "healthz",
        "summary": "Liveness, and whether answers are being stored (no authentication)",
        "description": (
            "Always 200 while the web server answers. `degraded` says that answers are "
            "not reaching the database now (spooled, or held in memory when the spool "
            "cannot take them either) or that some were lost; `problems` says which, in "
            "words. A degraded service keeps surveying: restarting it would not help."
        ),
        "tags": ["operations"],
        "security": [],
        "responses": {
            "200": {
                "description": "Alive.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "problems"],
                            "properties": {
                                "status": {"type": "string", "enum": ["ok", "degraded"]},
                                "problems": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    }
                },
            }
        },
    }


def _metrics() -> dict[str, Any]:
    return {
        "operationId": "metrics",
        "summary": "Prometheus metrics (text exposition format 0.0.4)",
        "description": (
            "AMI connected, calls tracked, surveys finished by status, AGI sessions "
            "open, database write latency, detractor alerts. Needs a token unless "
            '[web] metrics_auth = "none".'
        ),
        "tags": ["operations"],
        "responses": {
            "200": {
                "description": "The metrics.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": {"description": "No valid token or session.", "content": _ERROR},
        },
    }


def _openapi() -> dict[str, Any]:
    return {
        "operationId": "openapi",
        "summary": "This document (no authentication)",
        "tags": ["operations"],
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}}},
    }


def _info(version: str, zone: str) -> dict[str, Any]:
    return {
        "title": "ivr-survey reports",
        "version": version,
        "description": (
            "Post-call NPS survey reports. Authenticate with `Authorization: Bearer "
            "<token>` (tokens in [web] tokens) or the dashboard's session cookie. A viewer "
            "token sees caller numbers and names masked. Errors are JSON "
            '`{"error": ..., "message": ...}`; invalid input is always a 400. '
            f"Days, weeks and months are {zone}'s ([reports] timezone) unless a request "
            "names another zone in `tz`; stored times are UTC."
        ),
    }


def document(version: str, zone: str = "UTC") -> dict[str, Any]:
    """The whole document; `version` is the package's version, `zone` the
    configured [reports] timezone, the default of every `tz`."""
    paths: dict[str, Any] = {
        endpoint.path: {"get": _operation(endpoint, zone)} for endpoint in REPORTS
    }
    paths["/healthz"] = {"get": _healthz()}
    paths["/metrics"] = {"get": _metrics()}
    paths["/api/openapi.json"] = {"get": _openapi()}
    return {
        "openapi": "3.1.0",
        "info": _info(version, zone),
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
    }
