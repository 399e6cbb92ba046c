"""The OpenAPI document: security schemes, shared definitions, error bodies, and the SDK edge.

drf-spectacular describes the DRF views. ``postprocess_schema`` (a
POSTPROCESSING_HOOKS entry) then adds what it cannot see: the shapes of flag
definitions, the one error body on every error status, and the paths the
Starlette SDK edge serves before Django (snapshot, stream, OFREP, health, metrics).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance

from flagsvc_sdk.engine import MAX_RULES, MAX_SPLIT_TOTAL, OPERATORS


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class ApiAutoSchema(AutoSchema):
    """Component names without the code's In/Out suffixes (FlagStateOut -> FlagState)."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        name = str(super().get_serializer_name(serializer, direction))
        return re.sub(r"(?<=[a-z])(Out|In)$", "", name)

    def _map_serializer(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer(serializer, direction, bypass_extensions)
        from flags.api.serializers import InputSerializer  # it imports this module

        # Request bodies refuse unknown fields (InputSerializer): say so.
        if direction == "request" and isinstance(force_instance(serializer), InputSerializer):
            schema["additionalProperties"] = False
        return schema


# --- security schemes ---------------------------------------------------------------------

_BEARER = "Send `Authorization: Bearer <token>`."
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "Admin token (`fsv_admin_...`): the whole management API. " + _BEARER,
    },
    "ServerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Server SDK key (`fsv_server_...`), bound to one environment: "
        "snapshot, stream and OFREP. " + _BEARER,
    },
    "ClientKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Client SDK key (`fsv_client_...`), bound to one environment: OFREP "
        "evaluation of client-visible flags only (and the stream). " + _BEARER,
    },
    "KillKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Kill key (`fsv_kill_...`), optionally bound to one environment: kill, "
        "restore and the list of active kills. " + _BEARER,
    },
    "ServerKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A server SDK key in the X-API-Key header (OFREP and the stream).",
    },
    "ClientKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A client SDK key in the X-API-Key header (OFREP and the stream).",
    },
    "SdkKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "A server or client SDK key as ?api_key= (the stream only, for "
        "browsers' EventSource, which cannot send headers).",
    },
}


class AdminTokenScheme(OpenApiAuthenticationExtension):
    target_class = "flags.api.auth.BearerTokenAuthentication"
    name = "AdminToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return SECURITY_SCHEMES["AdminToken"]


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "flags.api.auth.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        from django.conf import settings

        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A logged-in staff user's Django admin session; acts as an admin "
            "token. Unsafe methods also need the CSRF token in the X-CSRFToken header.",
        }


# --- shared definitions ---------------------------------------------------------------------

_VARIANT = {"type": "string", "description": "A variant name of the flag", "example": "on"}
DEFINITIONS: dict[str, dict[str, Any]] = {
    "Condition": {
        "type": "object",
        "required": ["operator"],
        "properties": {
            "attribute": {"type": "string", "example": "country"},
            "operator": {"type": "string", "enum": list(OPERATORS)},
            "value": {
                "description": "Operand: a string, number, boolean or list, as the operator "
                "needs; segment keys for in_segment/not_in_segment."
            },
        },
        "example": {"attribute": "country", "operator": "in", "value": ["DE", "FR"]},
    },
    "SplitShare": {
        "type": "object",
        "required": ["variant", "weight"],
        "properties": {
            "variant": _VARIANT,
            "weight": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_SPLIT_TOTAL,
                "description": "Relative weight: a variant's share is its weight divided by the "
                "split's total ([1, 1] is 50/50, [2500, 7500] is 25/75). At least one weight "
                f"is above 0; the total is at most {MAX_SPLIT_TOTAL}. Percentage rollouts write "
                "basis points (p x 100 of 10000).",
            },
        },
    },
    "Serve": {
        "description": "What to serve: one variant, or a percentage split.",
        "oneOf": [
            {
                "type": "object",
                "required": ["variant"],
                "properties": {"variant": _VARIANT},
                "additionalProperties": False,
            },
            {
                "type": "object",
                "required": ["split"],
                "properties": {
                    "split": {"type": "array", "items": ref("SplitShare"), "minItems": 1},
                    "bucket_by": {
                        "type": "string",
                        "default": "targetingKey",
                        "description": "The context attribute whose value is bucketed.",
                    },
                },
                "additionalProperties": False,
            },
        ],
        "example": {
            "split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
        },
    },
    "Target": {
        "type": "object",
        "required": ["variant", "values"],
        "properties": {
            "variant": _VARIANT,
            "values": {"type": "array", "items": {"type": "string"}, "example": ["user-1"]},
        },
    },
    "Rule": {
        "type": "object",
        "required": ["serve"],
        "properties": {
            "id": {"type": "string", "maxLength": 64},
            "description": {"type": "string"},
            "conditions": {"type": "array", "items": ref("Condition")},
            "serve": ref("Serve"),
        },
        "description": f"The first rule whose conditions all hold serves. At most {MAX_RULES}.",
    },
    "SegmentRule": {
        "type": "object",
        "properties": {"conditions": {"type": "array", "items": ref("Condition")}},
        "description": "A context whose attributes meet every condition is in the segment.",
    },
    "Prerequisite": {
        "type": "object",
        "required": ["flag", "variant"],
        "properties": {"flag": {"type": "string"}, "variant": _VARIANT},
    },
    "Kill": {
        "type": "object",
        "properties": {
            "by": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "reason": {"type": "string"},
            "incident": {"type": "string", "format": "uuid", "nullable": True},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "fields"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Machine-readable: validation_failed, malformed_json, "
                        "invalid_parameter, not_authenticated, invalid_token, "
                        "permission_denied, csrf_failed, not_found, method_not_allowed, "
                        "not_acceptable, version_conflict, already_exists, flag_archived, "
                        "rollout_plan_conflict, "
                        "payload_too_large, unsupported_media_type, throttled, internal_error",
                        "example": "validation_failed",
                    },
                    "message": {
                        "type": "string",
                        "description": "What went wrong and what to fix.",
                        "example": "default_serve.variant: must name one of the variants "
                        "(on, off); got 'maybe'",
                    },
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "Per field (or parameter) path, what is wrong with it.",
                        "example": {
                            "default_serve.variant": "must name one of the variants (on, off)"
                        },
                    },
                },
            }
        },
    },
}

ERROR_DESCRIPTIONS = {
    "400": "Bad input (validation_failed, malformed_json or invalid_parameter); nothing changed.",
    "401": "No credentials, or an unknown or revoked token.",
    "403": "The credential's kind may not call this endpoint (or a CSRF failure).",
    "404": "No such thing (the message names it).",
    "406": "The Accept header asks for a format this endpoint does not answer.",
    "409": "Conflict (version_conflict, already_exists, flag_archived or "
    "rollout_plan_conflict); nothing changed.",
    "413": "The request body is too large.",
    "415": "The body is not JSON.",
    "429": "Too many requests with this credential; see Retry-After.",
    "500": "Unexpected error; nothing changed. Report the X-Request-ID.",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before retrying.",
    }
}
WRITE_METHODS = ("post", "put", "patch", "delete")


def _error_response(status: str, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or ERROR_DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if status == "429":
        response["headers"] = RETRY_AFTER
    return response


def _add_error_responses(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    # 400 everywhere: a bad query parameter, or a NUL in the path (flagsvc.middleware).
    statuses = ["400", "401", "403", "429", "500"]
    if method in WRITE_METHODS:  # 409: e.g. the flag is archived, or another write won
        statuses += ["409", "413", "415"]
    if "{" in path or method in WRITE_METHODS:  # a body can name a missing flag, too
        statuses.append("404")
    for status in statuses:
        responses.setdefault(status, _error_response(status))
    for status, response in responses.items():
        if status[0] in "45" and "content" not in response:
            response.update(_error_response(status, response.get("description")))


# --- the SDK edge (Starlette) -----------------------------------------------------------------


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
    "SnapshotFlag": {
        "type": "object",
        "required": ["key", "type", "variants", "off_variant", "version", "enabled"],
        "properties": {
            "key": {"type": "string"},
            "type": {"type": "string", "enum": ["boolean", "string", "number", "json"]},
            "variants": {"type": "object", "additionalProperties": {}},
            "off_variant": {"type": "string"},
            "client_visible": {"type": "boolean"},
            "version": {"type": "integer"},
            "enabled": {"type": "boolean"},
            "kill": {"allOf": [ref("Kill")], "nullable": True},
            "targets": {"type": "array", "items": ref("Target")},
            "rules": {"type": "array", "items": ref("Rule")},
            "default_serve": ref("Serve"),
            "prerequisites": {"type": "array", "items": ref("Prerequisite")},
        },
    },
    "SnapshotSegment": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "included": {"type": "array", "items": {"type": "string"}},
            "excluded": {"type": "array", "items": {"type": "string"}},
            "rules": {"type": "array", "items": ref("SegmentRule")},
        },
    },
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
                "400": _error_response("400", "An admin token named no environment."),
                "401": _error_response("401"),
                "403": _error_response("403", "Not a server SDK key, or another environment."),
                "404": _error_response("404", "No such environment."),
                "429": _error_response("429"),
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
                "400": _error_response("400", "An admin token named no environment."),
                "401": _error_response("401"),
                "403": _error_response(
                    "403", "Not a server or client SDK key, or another environment."
                ),
                "404": _error_response("404", "No such environment."),
                "429": _error_response("429"),
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


def _drop_request_suffixes(result: dict[str, Any]) -> dict[str, Any]:
    """``FooRequest`` -> ``Foo`` where no response component is called ``Foo``.

    COMPONENT_SPLIT_REQUEST gives request bodies components of their own (so that
    non-blank strings carry ``minLength: 1``), named with a Request suffix; input-only
    serializers keep their plain names, as before the split.
    """
    schemas = result.get("components", {}).get("schemas", {})
    renames = {
        f"#/components/schemas/{name}": f"#/components/schemas/{name[: -len('Request')]}"
        for name in schemas
        if name.endswith("Request") and name[: -len("Request")] not in schemas
    }
    if not renames:
        return result

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") in renames:
                node["$ref"] = renames[node["$ref"]]
            for child in node.values():
                rewrite(child)
        elif isinstance(node, list):
            for child in node:
                rewrite(child)

    rewrite(result)
    result["components"]["schemas"] = {
        (name[: -len("Request")] if f"#/components/schemas/{name}" in renames else name): body
        for name, body in schemas.items()
    }
    return result


def postprocess_schema(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: definitions, error bodies and the SDK edge's paths."""
    result = _drop_request_suffixes(result)
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in {**DEFINITIONS, **EDGE_DEFINITIONS}.items():
        schemas.setdefault(name, schema)
    security = components.setdefault("securitySchemes", {})
    for name, scheme in SECURITY_SCHEMES.items():
        security.setdefault(name, scheme)
    paths = result.setdefault("paths", {})
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                _add_error_responses(path, method, operation)
    for path, operations in EDGE_PATHS.items():
        paths.setdefault(path, operations)
    result["paths"] = dict(sorted(paths.items()))
    return result
