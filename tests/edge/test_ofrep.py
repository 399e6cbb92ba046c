"""OFREP (OpenFeature Remote Evaluation Protocol) on the edge: success and every error shape."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from flags import services
from flagsvc_sdk.engine import CompiledFlag
from tests.edge.conftest import LiveEdge, flag, wait_for

SINGLE = "/ofrep/v1/evaluate/flags/{}"
INCIDENT = uuid.UUID("5e1f0c2a-7d1b-4c55-9a51-3f0d8f9b2c11")
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


def wait_for_answer(edge: LiveEdge, key: str, token: str, context: Any, **expected: Any) -> Any:
    """The flag's answer once it has the expected fields (a change reaches the edge)."""
    answers: list[Any] = []

    def arrived() -> bool:
        answers.append(post(edge, SINGLE.format(key), token, context).json())
        return all(answers[-1].get(name) == value for name, value in expected.items())

    wait_for(arrived)
    return answers[-1]


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
    assert body["metadata"] == {"flagVersion": 2}  # the flag's own version, nothing else


def test_single__integer_number_flag__serialises_json_integers(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # The OpenFeature Python provider's get_integer_details refuses 42.0
    limit = services.flag_create(
        actor=world["actor"],
        key="upload-limit",
        type="number",
        variants={"small": 10, "large": 42},
        off_variant="small",
        client_visible=True,
    )
    services.flag_state_update(
        actor=world["actor"],
        flag=limit,
        environment=world["production"],
        enabled=True,
        rules=[
            {
                "id": "big",
                "conditions": [{"attribute": "plan", "operator": "equals", "value": "pro"}],
                "serve": {"variant": "large"},
            }
        ],
        default_serve={"variant": "small"},
    )
    context = {"context": {"targetingKey": "u", "plan": "pro"}}
    wait_for_answer(live_edge, "upload-limit", world["tokens"]["server"], context, variant="large")
    single = post(live_edge, SINGLE.format("upload-limit"), world["tokens"]["server"], context)
    bulk = post(live_edge, BULK, world["tokens"]["server"], context)
    assert '"value":42,' in single.text and type(single.json()["value"]) is int
    assert '"key":"upload-limit","value":42,' in bulk.text


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


def test_killed_flag__server_key_sees_who_and_why__client_key_only_that_it_is_killed(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # Client keys are public in browsers: who killed a flag and why stays on the server side
    services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="payment provider down",
        incident_id=INCIDENT,
    )
    context = {"context": {"targetingKey": "u1"}}
    server = wait_for_answer(
        live_edge, "new-checkout", world["tokens"]["server"], context, reason="DISABLED"
    )
    assert server["value"] is False and server["variant"] == "off"
    assert server["metadata"]["killed"] is True and "tester" in server["metadata"]["killedBy"]
    assert server["metadata"]["killReason"] == "payment provider down"
    assert server["metadata"]["incident"] == str(INCIDENT)
    for _ in range(2):  # the second answer comes from the per-key-kind cache
        single = post(live_edge, SINGLE.format("new-checkout"), world["tokens"]["client"], context)
        bulk = post(live_edge, BULK, world["tokens"]["client"], context)
        bulk_answer = next(f for f in bulk.json()["flags"] if f["key"] == "new-checkout")
        for answer in (single.json(), bulk_answer):
            assert answer["reason"] == "DISABLED"
            assert answer["metadata"]["killed"] is True
            assert not {"killedBy", "killReason", "incident", "killedAt"} & set(answer["metadata"])
            assert "payment provider" not in json.dumps(answer)


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
    live_edge.application.state.edge.limiters["server"].limit = 3
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


def test_server_key__at_a_busy_service_rate__is_not_throttled(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # A service evaluating remotely sends hundreds per second from one host.
    client = live_edge.client(world["tokens"]["server"])
    body = {"context": {"targetingKey": "u1", "country": "DE"}}

    def burst(n: int) -> list[int]:
        with ThreadPoolExecutor(4) as pool:
            return list(
                pool.map(
                    lambda _: client.post(SINGLE.format("new-checkout"), json=body).status_code,
                    range(n),
                )
            )

    started = time.monotonic()
    statuses = burst(600)
    rate = 600 / (time.monotonic() - started)

    assert rate > 150, f"too slow to tell: {rate:.0f}/s"
    assert statuses.count(429) == 0, f"{statuses.count(429)} of 600 refused at {rate:.0f}/s"


def test_client_key__over_its_own_limit__throttled_per_key_and_address(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    limiters = live_edge.application.state.edge.limiters
    assert (limiters["server"].limit, limiters["client"].limit) == (2000, 200)
    limiters["client"].limit = 2
    while time.time() % 1 > 0.2:  # start just after a one-second window opens
        time.sleep(0.01)
    body = {"context": {"targetingKey": "u"}}
    client = [post(live_edge, BULK, world["tokens"]["client"], body).status_code for _ in range(3)]
    server = [post(live_edge, BULK, world["tokens"]["server"], body).status_code for _ in range(3)]
    assert client == [200, 200, 429] and server == [200, 200, 200]


def test_bulk__edit_one_flag__only_that_flag_answers_differently(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # The OFREP web provider compares each flag's answer to tell which flags changed
    body = {"context": {"targetingKey": "u1", "country": "DE"}}
    before = post(live_edge, BULK, world["tokens"]["client"], body)
    services.flag_state_update(
        actor=world["actor"],
        flag=flag("price"),
        environment=world["production"],
        default_serve={"variant": "high"},
    )
    wait_for(
        lambda: (
            post(live_edge, BULK, world["tokens"]["client"], body).headers["etag"]
            != before.headers["etag"]
        )
    )
    after = post(live_edge, BULK, world["tokens"]["client"], body)
    old = {f["key"]: f for f in before.json()["flags"]}
    new = {f["key"]: f for f in after.json()["flags"]}
    assert new["new-checkout"] == old["new-checkout"]
    assert new["price"]["value"] == 12.5
    assert new["price"]["metadata"]["flagVersion"] > old["price"]["metadata"]["flagVersion"]


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
    assert response.status_code == 200  # Starlette's CORSMiddleware; any 2xx passes a preflight
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "x-api-key", "content-type", "if-none-match"):
        assert header in allowed
    # Browsers read Access-Control-Expose-Headers on the answer itself (checked below), not here.


def test_cors__answers_from_any_origin_but_only_on_sdk_paths(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    origin = {"Origin": "https://shop.example"}
    answer = post(live_edge, BULK, world["tokens"]["client"], b'{"context": {}}', **origin)
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "etag" in answer.headers["access-control-expose-headers"].lower()
    # The management API and the admin keep the same-origin policy.
    api = live_edge.client(world["tokens"]["admin"], **origin).get("/api/v1/flags/")
    assert api.status_code == 200 and "access-control-allow-origin" not in api.headers
    preflight = live_edge.client().options(
        "/api/v1/flags/", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def _connect(edge: LiveEdge, head: str) -> socket.socket:
    host, port = edge.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=3)
    sock.sendall(head.replace("\n", "\r\n").encode())
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """Reads one HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, json.loads(body)


def test_body__content_length_over_the_limit__413_before_any_body_is_sent(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    sock = _connect(
        live_edge,
        f"POST {BULK} HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {world['tokens']['server']}\n"
        "Content-Type: application/json\nContent-Length: 200000000\n\n",
    )
    with sock:
        status, headers, body = _response(sock)  # a socket timeout here: it waits for the body
    assert status == 413 and body["errorCode"] and "64 KB" in body["errorDetails"]
    assert headers["connection"] == "close"


def test_body__no_token__401_and_the_upload_is_cut_off(live_edge: LiveEdge) -> None:
    sock = _connect(
        live_edge,
        f"POST {BULK} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        "Content-Length: 20000000\n\n",
    )
    with sock:
        status, headers, _ = _response(sock)
        assert status == 401 and headers["connection"] == "close"
        assert sock.recv(1) == b""  # closed: the rest of the 20 MB is never read
        with pytest.raises(OSError):
            for _ in range(40):
                sock.sendall(b"x" * 500_000)


def test_body__chunked_over_the_limit__413_without_waiting_for_the_end(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    sock = _connect(
        live_edge,
        f"POST {BULK} HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {world['tokens']['server']}\n"
        "Content-Type: application/json\nTransfer-Encoding: chunked\n\n",
    )
    with sock:
        chunk = b"x" * 16_384
        with contextlib.suppress(OSError):  # the server may hang up before all is sent
            for _ in range(10):  # 160 KB, and no final chunk: the body never ends
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, headers, _ = _response(sock)
    assert status == 413 and headers["connection"] == "close"


def test_body__just_under_the_limit__evaluated(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    padding = "x" * (64 * 1024 - 100)
    body = {"context": {"targetingKey": "u1", "country": "DE", "note": padding}}
    response = post(live_edge, SINGLE.format("new-checkout"), world["tokens"]["server"], body)
    assert response.status_code == 200 and response.json()["variant"] == "on"


@pytest.mark.parametrize("path", [SINGLE.format("new-checkout"), BULK])
def test_slow_evaluation_of_a_large_context__healthz_still_answers(
    live_edge: LiveEdge, world: dict[str, Any], monkeypatch: Any, path: str
) -> None:
    # Given an evaluation that takes half a second (as a pathological rule would)
    original = CompiledFlag.evaluate

    def slow(self: CompiledFlag, context: Any, flags: Any, depth: int = 0) -> Any:
        if context.get("slow"):
            time.sleep(0.5)
        return original(self, context, flags, depth)

    monkeypatch.setattr(CompiledFlag, "evaluate", slow)
    body = {"context": {"targetingKey": "u1", "slow": True, "profile": "x" * 30_000}}
    # When a large request is being evaluated
    with ThreadPoolExecutor(1) as pool:
        evaluation = pool.submit(post, live_edge, path, world["tokens"]["server"], body)
        time.sleep(0.15)
        started = time.monotonic()
        health = live_edge.client().get("/healthz")
        waited = time.monotonic() - started
        assert evaluation.result().status_code == 200
    # Then the event loop is free: a probe answers at once
    assert health.status_code == 200 and waited < 0.2, f"/healthz waited {waited:.2f} s"
