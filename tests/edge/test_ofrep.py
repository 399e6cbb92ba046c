"""OFREP (OpenFeature Remote Evaluation Protocol) on the edge: success and every error shape."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flags import services
from tests.edge.conftest import LiveEdge, flag

SINGLE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"


def post(
    edge: LiveEdge,
    path: str,
    token: str | None,
    body: Any = None,
    *,
    header: str = "bearer",
    **headers: str,
) -> Any:
    if token and header == "api-key":
        headers["X-API-Key"] = token
        token = None
    client = edge.client(token, **headers)
    if isinstance(body, bytes):
        return client.post(path, content=body, headers={"Content-Type": "application/json"})
    return client.post(path, json=body)


def test_single__rule_match__typed_value_reason_variant_metadata(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    response = post(
        live_edge,
        SINGLE.format("new-checkout"),
        world["tokens"]["server"],
        {"context": {"targetingKey": "u1", "country": "DE"}},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert {k: body[k] for k in ("key", "value", "reason", "variant")} == {
        "key": "new-checkout",
        "value": True,
        "reason": "TARGETING_MATCH",
        "variant": "on",
    }
    assert body["metadata"]["flagVersion"] >= 1 and body["metadata"]["environmentVersion"] >= 1


def test_single__number_flag__serialises_a_json_float(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    response = post(
        live_edge,
        SINGLE.format("price"),
        world["tokens"]["client"],
        {"context": {"targetingKey": "u"}},
        header="api-key",
    )
    assert response.status_code == 200
    assert '"value":10.0' in response.text and response.json()["variant"] == "low"


def test_single__killed_flag__disabled_with_who_and_why(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="errors",
    )
    from tests.edge.conftest import wait_for

    def killed() -> bool:
        return (
            post(
                live_edge,
                SINGLE.format("new-checkout"),
                world["tokens"]["server"],
                {"context": {"targetingKey": "u1"}},
            ).json()["reason"]
            == "DISABLED"
        )

    wait_for(killed)
    body = post(
        live_edge,
        SINGLE.format("new-checkout"),
        world["tokens"]["server"],
        {"context": {"targetingKey": "u1"}},
    ).json()
    assert body["value"] is False and body["variant"] == "off"
    assert body["metadata"]["killed"] is True and body["metadata"]["killReason"] == "errors"


@pytest.mark.parametrize(
    ("path", "token", "body", "status", "code"),
    [
        (
            SINGLE.format("no-such-flag"),
            "server",
            {"context": {"targetingKey": "u"}},
            404,
            "FLAG_NOT_FOUND",
        ),
        (
            SINGLE.format("internal-tool"),
            "client",
            {"context": {"targetingKey": "u"}},
            404,
            "FLAG_NOT_FOUND",
        ),
        (SINGLE.format("new-checkout"), "server", b'{"context": {', 400, "PARSE_ERROR"),
        (SINGLE.format("new-checkout"), "server", [1, 2], 400, "INVALID_CONTEXT"),
        (SINGLE.format("new-checkout"), "server", {"context": "user-1"}, 400, "INVALID_CONTEXT"),
        (
            SINGLE.format("new-checkout"),
            "server",
            {"context": {"targetingKey": 42}},
            400,
            "INVALID_CONTEXT",
        ),
        (
            SINGLE.format("new-checkout"),
            "server",
            {"context": {"country": "FR"}},
            400,
            "TARGETING_KEY_MISSING",
        ),
    ],
)
def test_single__errors__code_and_details_always(
    live_edge: LiveEdge,
    world: dict[str, Any],
    path: str,
    token: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    response = post(live_edge, path, world["tokens"][token], body)
    assert response.status_code == status
    payload = response.json()
    assert payload["errorCode"] == code and payload["errorDetails"]
    assert payload["key"] == path.rsplit("/", 1)[1]


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("revoked", 401), ("kill", 403), ("fsv_client_unknown", 401)]
)
def test_single__auth_refused(
    live_edge: LiveEdge, world: dict[str, Any], token: str | None, status: int
) -> None:
    raw = world["tokens"].get(token, token) if token else None
    response = post(
        live_edge,
        SINGLE.format("new-checkout"),
        raw,
        {"context": {"targetingKey": "u"}},
        header="api-key",
    )
    assert response.status_code == status
    assert response.json()["errorCode"] and response.json()["errorDetails"]


def test_rate_limited__429_with_integer_retry_after(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    live_edge.application.state.edge.limiter.limit = 3
    while time.time() % 1 > 0.2:  # start just after a one-second window opens
        time.sleep(0.01)
    statuses = [
        post(live_edge, SINGLE.format("price"), world["tokens"]["server"], {"context": {}})
        for _ in range(5)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert statuses[-1].headers["retry-after"].isdigit()
    assert statuses[-1].json()["errorCode"] == "rate_limited"


def test_bulk__client_key__only_client_visible_flags_with_etag_and_304(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    body = {"context": {"targetingKey": "u1", "country": "DE"}}
    response = post(live_edge, BULK, world["tokens"]["client"], body, header="api-key")
    assert response.status_code == 200
    flags = {f["key"]: f for f in response.json()["flags"]}
    assert set(flags) == {"new-checkout", "price"}
    assert flags["new-checkout"]["value"] is True and flags["price"]["value"] == 10.0
    etag = response.headers["etag"]
    again = post(
        live_edge,
        BULK,
        world["tokens"]["client"],
        body,
        header="api-key",
        **{"If-None-Match": etag},
    )
    assert again.status_code == 304 and again.content == b""
    other = post(
        live_edge,
        BULK,
        world["tokens"]["client"],
        {"context": {"targetingKey": "u2"}},
        header="api-key",
        **{"If-None-Match": etag},
    )
    assert other.status_code == 200


def test_bulk__server_key__every_flag_and_per_flag_errors(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    response = post(live_edge, BULK, world["tokens"]["server"], {"context": {}})
    flags = {f["key"]: f for f in response.json()["flags"]}
    assert set(flags) == {"new-checkout", "internal-tool", "price"}
    assert flags["new-checkout"]["errorCode"] == "TARGETING_KEY_MISSING"


def test_bulk__bad_json__parse_error(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    response = post(live_edge, BULK, world["tokens"]["server"], b"not json")
    assert response.status_code == 400 and response.json()["errorCode"] == "PARSE_ERROR"


def test_cors__preflight_allows_the_sdk_headers_and_exposes_etag(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    response = live_edge.client().options(
        BULK, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 204
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "x-api-key", "content-type", "if-none-match"):
        assert header in allowed
    assert "etag" in response.headers["access-control-expose-headers"].lower()
