"""The one place API scope is decided, as later endpoints (kill keys) will use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from flags.api.permissions import environment_scope_check, token_kinds

pytestmark = pytest.mark.django_db


class KillLikeView(APIView):
    """What a kill endpoint will look like: admin or kill tokens, bound kill keys checked."""

    permission_classes = [token_kinds("admin", "kill")]

    def post(self, request: Request, environment: str) -> Response:
        environment_scope_check(request, environment)
        return Response({"ok": True})


def _call(raw: str, environment: str) -> Any:
    request = APIRequestFactory().post("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    return KillLikeView.as_view()(request, environment=environment)


@pytest.mark.parametrize(
    ("kind", "bound_to", "environment", "status"),
    [
        ("admin", None, "production", 200),
        ("kill", None, "production", 200),
        ("kill", "staging", "staging", 200),
        ("kill", "staging", "production", 403),
        ("server", "production", "production", 403),
        ("client", "production", "production", 403),
    ],
)
def test_token_kinds__allows_the_named_kinds_and_checks_bound_environments(
    issue: Callable[..., str], kind: str, bound_to: str | None, environment: str, status: int
) -> None:
    response = _call(issue(kind, environment=bound_to), environment)
    assert response.status_code == status, response.data


def test_token_kinds__refusal_names_every_kind_that_would_do(issue: Callable[..., str]) -> None:
    response = _call(issue("server", environment="production"), "production")
    message = response.data["error"]["message"]
    assert "needs an admin token, a kill key or a logged-in staff session" in message


def test_token_kinds__typo_fails_at_import() -> None:
    with pytest.raises(ValueError):
        token_kinds("admin", "kil")


def test_environment_scope_check__bound_key_message_names_both_environments(
    issue: Callable[..., str],
) -> None:
    response = _call(issue("kill", environment="staging"), "production")
    assert "bound to the environment 'staging'; it cannot act on 'production'" in str(
        response.data["error"]["message"]
    )
