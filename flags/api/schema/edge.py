"""The paths the Starlette SDK edge serves before Django: snapshot, stream, OFREP, health, metrics."""

from __future__ import annotations

from typing import Any

from flags.api.schema.definitions import ref
from flags.api.schema.errors import RETRY_AFTER, error_response

_SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "example": "version"},
        "data": {"type": "string", "description": "A JSON document"},
        "id": {"type": "string", "description": "The version, for Last-Event-ID"},
        "retry": {"type": "integer"},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


EDGE_DEFINITIONS: dict[str, dict[str, Any]] = {
    "Snapshot": {
        "type": "object",
        "description": "Everything a server SDK needs to evaluate every flag of one environment.",
        "required": ["schema_version", "environment", "version", "flags", "segments"],
        "properties": {
            "schema_version": {"type": "integer", "example": 1},
            "environment": {"type": "string", "example": "production"},
            "version": {"type": "integer", "example": 42},
            "flags": {"type": "object", "additionalProperties": ref("SnapshotFlag")},
            "segments": {"type": "object", "additionalProperties": ref("SnapshotSegment")},
        },
    },
    "OfrepEvaluationRequest": {
        "type": "object",
        "properties": {
            "context": {
                "type": "object",
                "additionalProperties": {},
                "description": "The evaluation context: targetingKey plus attributes.",
                "example": {"targetingKey": "user-1", "country": "DE"},
            }
        },
    },
    "OfrepEvaluationSuccess": {
        "type": "object",
        "required": ["key", "value", "reason"],
        "properties": {
            "key": {"type": "string"},
            "value": {"description": "Typed as the flag's type."},
            "reason": {
                "type": "string",
                "enum": ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT", "UNKNOWN"],
            },
            "variant": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {}},
        },
    },
    "OfrepEvaluationFailure": {
        "type": "object",
        "required": ["key", "errorCode"],
        "properties": {
            "key": {"type": "string"},
            "errorCode": {
                "type": "string",
                "enum": [
                    "PARSE_ERROR",
                    "TARGETING_KEY_MISSING",
                    "INVALID_CONTEXT",
                    "FLAG_NOT_FOUND",
                    "GENERAL",
                ],
            },
            "errorDetails": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {}},
        },
    },
    "OfrepBulkEvaluationSuccess": {
        "type": "object",
        "required": ["flags"],
        "properties": {
            "flags": {
                "type": "array",
                "items": {"oneOf": [ref("OfrepEvaluationSuccess"), ref("OfrepEvaluationFailure")]},
            },
            "metadata": {"type": "object", "additionalProperties": {}},
        },
    },
    "OfrepBulkEvaluationFailure": {
        "type": "object",
        "required": ["errorCode"],
        "properties": {
            "errorCode": {
                "type": "string",
                "enum": ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"],
            },
            "errorDetails": {"type": "string"},
        },
    },
    "OfrepGeneralError": {
        "type": "object",
        "properties": {
            "errorCode": {
                "type": "string",
                "description": "unauthenticated, permission_denied, rate_limited, not_found",
            },
            "errorDetails": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "example": "ok"}},
        "additionalProperties": {},
    },
}

_ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": "The version's validator."}}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag you hold: an unchanged version answers 304 with no body.",
}
_ENVIRONMENT = {
    "name": "environment",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Environment key. Required with an admin token; an SDK key may only name "
    "its own environment (the default).",
}
_OFREP_SECURITY: list[dict[str, list[str]]] = [
    {"ServerKey": []},
    {"ClientKey": []},
    {"ServerKeyHeader": []},
    {"ClientKeyHeader": []},
    {"AdminToken": []},
]


def _ofrep_error(description: str, schema: str = "OfrepGeneralError") -> dict[str, Any]:
    return {"description": description, **_json(ref(schema))}


def _ofrep_errors(failure: str) -> dict[str, Any]:
    return {
        "400": _ofrep_error(
            "INVALID_CONTEXT, PARSE_ERROR or TARGETING_KEY_MISSING (errorCode, errorDetails); "
            "GENERAL when an admin token names no environment.",
            failure,
        ),
        "401": _ofrep_error("No key, or an unknown or revoked key."),
        "403": _ofrep_error("The key's kind may not evaluate (or see) this."),
        "429": {**_ofrep_error("Too many requests; see Retry-After."), "headers": RETRY_AFTER},
    }


EDGE_PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/sdk/snapshot/": {
        "get": {
            "operationId": "sdk_snapshot",
            "tags": ["sdk"],
            "summary": "The environment's snapshot, for server SDKs to evaluate locally",
            "description": "The environment is the server key's. Answers 304 to an "
            "If-None-Match naming the current ETag; `Accept-Encoding: gzip` gets gzip bytes. "
            "`Cache-Control: no-cache`: caches may store it but must revalidate.",
            "security": [{"ServerKey": []}, {"AdminToken": []}],
            "parameters": [
                _ENVIRONMENT,
                _IF_NONE_MATCH,
                {
                    "name": "Accept-Encoding",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "example": "gzip"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The current snapshot.",
                    "headers": {
                        **_ETAG_HEADER,
                        "Cache-Control": {"schema": {"type": "string", "example": "no-cache"}},
                    },
                    **_json(ref("Snapshot")),
                },
                "304": {"description": "Not modified.", "headers": _ETAG_HEADER},
                "400": error_response("400", "An admin token named no environment."),
                "401": error_response("401"),
                "403": error_response("403", "Not a server SDK key, or another environment."),
                "404": error_response("404", "No such environment."),
                "429": error_response("429"),
            },
        }
    },
    "/api/v1/sdk/stream/": {
        "get": {
            "operationId": "sdk_stream",
            "tags": ["sdk"],
            "summary": "Server-sent events: a message for every new version of the environment",
            "description": "`text/event-stream`. Each event names the environment and its new "
            "version (server keys also get what changed); reconnect with Last-Event-ID.",
            "security": [
                {"ServerKey": []},
                {"ClientKey": []},
                {"ServerKeyHeader": []},
                {"ClientKeyHeader": []},
                {"SdkKeyQuery": []},
                {"AdminToken": []},
            ],
            "parameters": [
                _ENVIRONMENT,
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "An open stream of events.",
                    # One event, as a client sees it once parsed (what schema checkers validate).
                    "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                },
                "400": error_response("400", "An admin token named no environment."),
                "401": error_response("401"),
                "403": error_response(
                    "403", "Not a server or client SDK key, or another environment."
                ),
                "404": error_response("404", "No such environment."),
                "429": error_response("429"),
            },
        }
    },
    "/ofrep/v1/evaluate/flags/{key}": {
        "post": {
            "operationId": "ofrep_evaluate_flag",
            "tags": ["ofrep"],
            "summary": "Evaluate one flag (OpenFeature Remote Evaluation Protocol)",
            "description": "A client key evaluates client-visible flags only.",
            "security": _OFREP_SECURITY,
            "parameters": [
                {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                _ENVIRONMENT,
            ],
            # No body evaluates with an empty context, as the OFREP providers expect.
            "requestBody": {"required": False, **_json(ref("OfrepEvaluationRequest"))},
            "responses": {
                "200": {"description": "The evaluation.", **_json(ref("OfrepEvaluationSuccess"))},
                **_ofrep_errors("OfrepEvaluationFailure"),
                "404": _ofrep_error(
                    "FLAG_NOT_FOUND (also for flags a client key may not see); not_found "
                    "(without key) for an unknown environment.",
                    "OfrepEvaluationFailure",
                ),
            },
        }
    },
    "/ofrep/v1/evaluate/flags": {
        "post": {
            "operationId": "ofrep_evaluate_flags",
            "tags": ["ofrep"],
            "summary": "Evaluate every flag the key may see (OFREP bulk)",
            "security": _OFREP_SECURITY,
            "parameters": [_ENVIRONMENT, _IF_NONE_MATCH],
            # No body evaluates with an empty context, as the OFREP providers expect.
            "requestBody": {"required": False, **_json(ref("OfrepEvaluationRequest"))},
            "responses": {
                "200": {
                    "description": "Every flag's evaluation.",
                    "headers": _ETAG_HEADER,
                    **_json(ref("OfrepBulkEvaluationSuccess")),
                },
                "304": {"description": "Not modified.", "headers": _ETAG_HEADER},
                **_ofrep_errors("OfrepBulkEvaluationFailure"),
                "404": _ofrep_error("not_found: no such environment (admin tokens name one)."),
            },
        }
    },
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "tags": ["operations"],
            "summary": "Liveness: the process answers",
            "security": [{}],
            "responses": {"200": {"description": "Alive.", **_json(ref("Health"))}},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readyz",
            "tags": ["operations"],
            "summary": "Readiness: the database (and Redis, when configured) answer",
            "security": [{}],
            "responses": {
                "200": {"description": "Ready.", **_json(ref("Health"))},
                "503": {
                    "description": "Not ready; the body says what is down.",
                    **_json(ref("Health")),
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["operations"],
            "summary": "Prometheus metrics",
            "security": [{}],
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
}
