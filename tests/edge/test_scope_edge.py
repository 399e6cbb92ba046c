"""The scope matrix of the SDK edge: every endpoint by every kind of caller, on a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from flags import services
from tests.edge.conftest import LiveEdge

# Every path names production explicitly, so keys of another environment must be refused.
ENDPOINTS = {
    "snapshot": ("GET", "/api/v1/sdk/snapshot/?environment=production", None),
    "stream": ("GET", "/api/v1/sdk/stream/?environment=production", None),
    "ofrep flag": (
        "POST",
        "/ofrep/v1/evaluate/flags/new-checkout?environment=production",
        {"context": {"targetingKey": "u"}},
    ),
    "ofrep bulk": (
        "POST",
        "/ofrep/v1/evaluate/flags?environment=production",
        {"context": {"targetingKey": "u"}},
    ),
}
ALLOWED = {
    "snapshot": {"admin", "server"},
    "stream": {"admin", "server", "client"},
    "ofrep flag": {"admin", "server", "client"},
    "ofrep bulk": {"admin", "server", "client"},
}
REFUSAL = {
    "admin": 403,
    "server": 403,
    "client": 403,
    "kill": 403,
    "server (staging)": 403,
    "client (staging)": 403,
    "no token": 401,
    "revoked": 401,
    "unknown": 401,
}


@pytest.fixture
def callers(world: dict[str, Any]) -> dict[str, str | None]:
    actor, staging = world["actor"], world["staging"]
    tokens = dict(world["tokens"])
    return {
        "admin": tokens["admin"],
        "server": tokens["server"],
        "client": tokens["client"],
        "kill": tokens["kill"],
        "server (staging)": tokens["staging_server"],
        "client (staging)": services.token_issue(
            actor=actor, kind="client", name="web-staging", environment=staging
        )[1],
        "no token": None,
        "revoked": tokens["revoked"],
        "unknown": "fsv_server_" + "x" * 43,
    }


def _call(edge: LiveEdge, token: str | None, method: str, path: str, body: Any) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with (
        httpx.Client(base_url=edge.url, headers=headers, timeout=10) as client,
        client.stream(method, path, json=body) as response,
    ):
        return response.status_code


@pytest.mark.parametrize("who", list(REFUSAL))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_edge_scope_matrix(
    live_edge: LiveEdge, callers: dict[str, str | None], endpoint: str, who: str
) -> None:
    method, path, body = ENDPOINTS[endpoint]
    status = _call(live_edge, callers[who], method, path, body)
    if who in ALLOWED[endpoint]:
        assert status == 200, (endpoint, who, status)
    else:
        assert status == REFUSAL[who], (endpoint, who, status)
