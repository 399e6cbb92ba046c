"""Errors the ASGI front answers itself are JSON, in OFREP's vocabulary on OFREP paths."""

from __future__ import annotations

from typing import Any

from tests.edge.conftest import LiveEdge

OFREP_BAD_REQUEST_CODES = {"PARSE_ERROR", "INVALID_CONTEXT", "TARGETING_KEY_MISSING", "GENERAL"}


def test_ofrep__admin_token_naming_no_environment__400_in_ofreps_enum_with_the_key(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["admin"])
    single = client.post("/ofrep/v1/evaluate/flags/new-checkout", json={"context": {}})
    assert single.status_code == 400
    assert single.json()["key"] == "new-checkout"
    assert single.json()["errorCode"] in OFREP_BAD_REQUEST_CODES
    bulk = client.post("/ofrep/v1/evaluate/flags", json={"context": {}})
    assert bulk.status_code == 400 and bulk.json()["errorCode"] in OFREP_BAD_REQUEST_CODES


def test_path_with_a_newline__json_404_from_the_api_not_plain_text(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["admin"])
    for path in ("/api/v1/flags/x%0A/", "/api/v1/environments/%0A/segments/", "/api/%0A"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/json"), path
        assert response.json()["error"]["code"] == "not_found", path


def test_edge_path_with_another_method__405_json_naming_the_allowed_ones(
    live_edge: LiveEdge,
) -> None:
    response = live_edge.client().request("TRACE", "/healthz")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"
