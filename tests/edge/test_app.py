"""The edge application's own checks: ALLOWED_HOSTS on the edge's paths."""

from __future__ import annotations

from typing import Any

import pytest

from tests.edge.conftest import LiveEdge

SNAPSHOT = "/api/v1/sdk/snapshot/"


def test_foreign_host__edge_path__400_naming_allowed_hosts(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["server"], Host="evil.example")
    for response in (
        client.get(SNAPSHOT),
        client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u"}}),
        client.get("/api/v1/sdk/stream/"),
        client.get("/api/v1/flags/"),
    ):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_host" and "ALLOWED_HOSTS" in error["message"]


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_foreign_host__probes_and_scrapers__still_answered(live_edge: LiveEdge, path: str) -> None:
    # Kubernetes probes and Prometheus use the pod's address as Host, rarely in ALLOWED_HOSTS
    assert live_edge.client(Host="10.1.2.3:8000").get(path).status_code == 200


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        ([".example.com"], "flags.example.com:8443", 200),
        ([".example.com"], "example.com", 200),
        ([".example.com"], "example.com.evil.net", 400),
        (["*"], "anything.test", 200),
        (["flags.example.com"], "FLAGS.example.com", 200),
        (["flags.example.com"], "other.example.com", 400),
    ],
)
def test_allowed_hosts__django_patterns(
    live_edge: LiveEdge,
    world: dict[str, Any],
    settings: Any,
    allowed: list[str],
    host: str,
    status: int,
) -> None:
    settings.ALLOWED_HOSTS = allowed
    response = live_edge.client(world["tokens"]["server"], Host=host).get(SNAPSHOT)
    assert response.status_code == status


def test_stopping__open_streams_end_and_new_ones_get_503_retry_after(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    from flags.edge.app import end_streams

    client = live_edge.client(world["tokens"]["server"])
    with client.stream("GET", "/api/v1/sdk/stream/") as response:
        lines = response.iter_lines()
        while not next(lines).startswith("data:"):  # the opening snapshot event
            pass
        assert end_streams() >= 1  # what flagsvc.serve calls when it is asked to stop
        rest = [line for line in lines if line]  # it ends, asking to reconnect within 0.5 s
        assert len(rest) == 1 and 50 <= int(rest[0].removeprefix("retry: ")) < 500, rest
    refused = client.get("/api/v1/sdk/stream/")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "shutting_down"
