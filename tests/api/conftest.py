"""Fixtures for the management API: issued tokens and clients that send them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from audit.recorder import Actor
from flags import services
from flags.models import Environment


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    # Throttle counters live in the cache, which outlives each test's transaction.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def issue(actor: Actor, environments: dict[str, Environment]) -> Callable[..., str]:
    """Issue a token through the service and return its raw value."""

    def make(kind: str = "admin", name: str | None = None, environment: str | None = None) -> str:
        _, raw = services.token_issue(
            actor=actor,
            kind=kind,
            name=name or f"{kind}-token",
            environment=environments[environment] if environment else None,
        )
        return raw

    return make


@pytest.fixture
def admin_token(issue: Callable[..., str]) -> str:
    return issue("admin", name="ci-bot")


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def api(admin_token: str) -> Client:
    """A client sending the admin token."""
    return bearer(admin_token)


def send(client: Client, method: str, path: str, body: Any = None, **headers: Any) -> Any:
    """One JSON request: ``body`` is sent as JSON when given."""
    kwargs: dict[str, Any] = {"headers": headers} if headers else {}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    elif method.upper() != "GET":
        return client.generic(method.upper(), path, **kwargs)  # no body, like curl -X POST
    return getattr(client, method.lower())(path, **kwargs)


def error_of(response: Any) -> dict[str, Any]:
    """The error envelope's inner object, after checking its shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["message"], body
    return dict(body["error"])
