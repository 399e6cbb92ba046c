"""What every endpoint does first: find the named thing (or a 404 saying how) and validate the body."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.request import Request

from flags.api import selectors
from flags.api import serializers as s
from flags.errors import ValidationFailed
from flags.models import ApiToken, Environment, Flag, Segment
from flagsvc.api.errors import ApiNotFound

FLAG_LIST_HINT = "List them with GET /api/v1/flags/?archived=any."

REASON_HEADER_PARAMETER = OpenApiParameter(
    "X-Reason",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Why (goes on the audit trail), if the body has no reason.",
)
CONFLICT = OpenApiResponse(description="Already exists; nothing changed.")


def environment_or_404(key: str) -> Environment:
    environment = selectors.environment_get(key)
    if environment is None:
        raise ApiNotFound(f"No environment {key!r}. List them with GET /api/v1/environments/.")
    return environment


def flag_or_404(key: str, *, with_states: bool = False, hint: str = FLAG_LIST_HINT) -> Flag:
    """The flag named ``key`` (with its tags and states if asked), else a 404 ending in ``hint``."""
    flag = selectors.flag_get(key) if with_states else selectors.flag_by_key(key)
    if flag is None:
        raise ApiNotFound(f"No flag {key!r}. {hint}")
    return flag


def segment_or_404(environment: Environment, key: str) -> Segment:
    segment = selectors.segment_get(environment, key)
    if segment is None:
        raise ApiNotFound(
            f"No segment {key!r} in {environment.key}. List them with "
            f"GET /api/v1/environments/{environment.key}/segments/."
        )
    return segment


def token_or_404(token_id: int) -> ApiToken:
    token = selectors.token_get(token_id)
    if token is None:
        raise ApiNotFound(f"No token with id {token_id}. List them with GET /api/v1/tokens/.")
    return token


def environment_in_body(key: str | None, field: str) -> Environment | None:
    """An environment named in a request body: a bad key is a 400 on that field, not a 404."""
    if key is None or key == "":
        return None
    environment = selectors.environment_get(key)
    if environment is None:
        known = ", ".join(e.key for e in selectors.environment_list())
        raise ValidationFailed(
            f"{field}: no environment {key!r}; known: {known}.",
            {field: f"no environment {key!r}"},
        )
    return environment


def valid_body(serializer_class: type[s.InputSerializer], request: Request, **kwargs: Any) -> Any:
    """The request body validated by ``serializer_class`` (a 400 naming each bad field)."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def changes_in(data: dict[str, Any], *exclude: str) -> dict[str, Any]:
    """The validated body without its reason (and ``exclude``): the fields to change."""
    return {k: v for k, v in data.items() if k not in ("reason", *exclude)}
