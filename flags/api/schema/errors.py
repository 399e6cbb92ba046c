"""The one error body on every error status of the management API, with what each status means."""

from __future__ import annotations

from typing import Any

from flags.api.schema.definitions import ref

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


def error_response(status: str, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or ERROR_DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if status == "429":
        response["headers"] = RETRY_AFTER
    return response


def add_error_responses(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    # 400 everywhere: a bad query parameter, or a NUL in the path (flagsvc.middleware).
    statuses = ["400", "401", "403", "429", "500"]
    if method in WRITE_METHODS:  # 409: e.g. the flag is archived, or another write won
        statuses += ["409", "413", "415"]
    if "{" in path or method in WRITE_METHODS:  # a body can name a missing flag, too
        statuses.append("404")
    for status in statuses:
        responses.setdefault(status, error_response(status))
    for status, response in responses.items():
        if status[0] in "45" and "content" not in response:
            response.update(error_response(status, response.get("description")))
