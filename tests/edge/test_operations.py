"""/healthz, /readyz and /metrics on the edge."""

from __future__ import annotations

import os
from typing import Any

from tests.edge.conftest import LiveEdge


def test_healthz(live_edge: LiveEdge) -> None:
    assert live_edge.client().get("/healthz").json() == {"status": "ok", "pid": os.getpid()}


def test_readyz__everything_reachable(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    response = live_edge.client().get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


def test_readyz__cache_down__503_naming_it(
    live_edge: LiveEdge, world: dict[str, Any], settings: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = live_edge.client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"].startswith("error") and body["checks"]["database"] == "ok"
    assert "cache" in body["error"]["message"]


def test_metrics__requests_latency_versions_and_streams(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["server"])
    client.get("/api/v1/sdk/snapshot/")
    live_edge.client().get("/healthz/django")
    text = live_edge.client().get("/metrics").text
    assert 'flagsvc_http_requests_total{endpoint="edge:snapshot",method="GET",status="200"}' in text
    assert 'flagsvc_http_request_duration_seconds_bucket{endpoint="edge:snapshot"' in text
    assert 'flagsvc_snapshot_version{environment="production"}' in text
    assert 'endpoint="django:healthz/django"' in text
    assert "flagsvc_open_streams" in text


def test_refusals__are_logged_like_django_4xx(
    live_edge: LiveEdge, world: dict[str, Any], caplog: Any
) -> None:
    caplog.set_level("WARNING", logger="flags.edge")
    live_edge.client().get("/api/v1/sdk/snapshot/")
    assert any(
        "/api/v1/sdk/snapshot/ -> 401 unauthenticated" in r.getMessage() for r in caplog.records
    )
    assert all(world["tokens"]["server"] not in r.getMessage() for r in caplog.records)
