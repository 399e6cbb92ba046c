"""/healthz, /readyz and /metrics on the edge."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import OperationalError

from flags.edge import errors, readiness
from tests.edge.conftest import LiveEdge


def test_healthz(live_edge: LiveEdge) -> None:
    assert live_edge.client().get("/healthz").json() == {"status": "ok", "pid": os.getpid()}


def test_readyz__everything_reachable(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    response = live_edge.client().get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


def test_readyz__redis_on_a_closed_port__200_with_cache_down_and_no_internals(
    live_edge: LiveEdge, world: dict[str, Any], settings: Any, caplog: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    caplog.set_level("WARNING", logger="flags.edge")
    response = live_edge.client().get("/readyz")
    # A Redis blip must not take every instance out of rotation: SDK reads still work.
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "down", "broker": "ok"},
    }
    assert "Error" not in response.text and "127.0.0.1:1" not in response.text
    assert any("cache is down" in r.getMessage() for r in caplog.records)  # the details: logged
    metrics = live_edge.client().get("/metrics").text
    assert 'flagsvc_dependency_state{dependency="cache",state="down"} 1.0' in metrics
    assert 'flagsvc_dependency_state{dependency="cache",state="ok"} 0.0' in metrics
    assert 'flagsvc_dependency_state{dependency="database",state="ok"} 1.0' in metrics


def test_readyz__broker_unreachable__200_with_broker_down(
    live_edge: LiveEdge, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flagsvc.celery import app

    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf, "broker_write_url", None)
    response = live_edge.client().get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "down"}


def test_readyz__database_unreachable_while_a_snapshot_is_held__200_with_database_down(
    live_edge: LiveEdge, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = live_edge.client(world["tokens"]["server"])
    assert server.get("/api/v1/sdk/snapshot/").status_code == 200  # the snapshot is held
    monkeypatch.setattr(readiness, "_database", refuse_connections)
    response = live_edge.client().get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "down", "cache": "ok", "broker": "ok"},
    }
    assert "refused" not in response.text
    assert server.get("/api/v1/sdk/snapshot/").status_code == 200  # still served from memory


def test_readyz__no_snapshot_yet_and_database_unreachable__503(
    live_edge: LiveEdge, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hold_no_snapshot(live_edge, monkeypatch)
    monkeypatch.setattr(readiness, "_database", refuse_connections)
    response = live_edge.client().get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "down"
    assert body["error"]["code"] == "not_ready"
    assert "database is unreachable" in body["error"]["message"]
    assert "refused" not in response.text


def test_readyz__no_snapshot_loaded_yet_while_environments_exist__503(
    live_edge: LiveEdge, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hold_no_snapshot(live_edge, monkeypatch)
    response = live_edge.client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


def test_readyz__no_environments_yet__ready(live_edge: LiveEdge) -> None:
    response = live_edge.client().get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def test_readyz__slow_dependencies_and_a_lost_redis_subscription__degraded_but_ready(
    live_edge: LiveEdge, world: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "SLOW_SECONDS", 0.0)  # every answer counts as slow
    assert live_edge.client().get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": "degraded", "cache": "degraded", "broker": "degraded"},
    }
    monkeypatch.undo()
    if settings.REDIS_URL:  # Redis answers, but this process lost its subscription
        monkeypatch.setattr(live_edge.application.state.fanout, "redis_healthy", False)
        response = live_edge.client().get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["cache"] == "degraded"


def hold_no_snapshot(live_edge: LiveEdge, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process as it is before its first snapshot arrives (and none arrives meanwhile)."""
    state = live_edge.application.state.edge.state
    monkeypatch.setattr(state, "install", lambda payload: None)
    monkeypatch.setattr(state, "environments", {})


def refuse_connections() -> list[str]:
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: refused")


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
    revoked, server = world["tokens"]["revoked"], world["tokens"]["server"]
    live_edge.client(revoked).get("/api/v1/sdk/snapshot/")  # a real key, refused: 401
    live_edge.client().get("/api/v1/sdk/snapshot/")  # no key: 401, summarised (bounded)
    live_edge.client(server).get("/api/v1/sdk/snapshot/?environment=staging")  # 403
    errors.bounded_refusals.flush()
    messages = [r.getMessage() for r in caplog.records]
    assert any("/api/v1/sdk/snapshot/ -> 401 " in m for m in messages), messages
    assert any("/api/v1/sdk/snapshot/ -> 403 permission_denied" in m for m in messages), messages
    assert all(revoked not in m and server not in m for m in messages)
