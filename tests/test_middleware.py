"""The Django side's front door: bodies refused before they are read, NUL refused, client addresses."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.api.alerts import ALERT_BODY_MAX_BYTES
from flags.models import FlagState
from tests.edge import conftest as edge
from tests.edge.conftest import LiveEdge

live_edge, world = edge.live_edge, edge.world  # the in-process uvicorn server and its data

LIMIT = 1024 * 1024  # DATA_UPLOAD_MAX_MEMORY_SIZE


def _send_partly(edge: LiveEdge, head: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    """Send a request head and only part of its body, then read the answer (no more sent)."""
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
            _headers(answer).get("content-length", "1")
        ):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    payload = answer.split(b"\r\n\r\n", 1)[1]
    return status, _headers(answer), json.loads(payload)


def _headers(answer: bytes) -> dict[str, str]:
    lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


@pytest.mark.integration
def test_body_declared_over_the_limit__413_before_it_is_sent_or_authenticated(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    head = (
        "POST /api/v1/flags/ HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        "Content-Length: 20000000\n"
    )
    status, headers, body = _send_partly(live_edge, head, b"{" + b" " * 1000)
    assert status == 413 and headers["connection"] == "close"
    assert body["error"]["code"] == "payload_too_large"
    assert str(LIMIT) in body["error"]["message"]


@pytest.mark.integration
def test_chunked_body_over_the_limit__413_once_the_limit_is_passed(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    head = (
        "POST /api/v1/flags/ HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
        f"Authorization: Bearer {world['tokens']['admin']}\nTransfer-Encoding: chunked\n"
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    status, _, body = _send_partly(live_edge, head, chunk * 17)  # 1.06 MB, never terminated
    assert status == 413 and str(LIMIT) in body["error"]["message"]


@pytest.mark.integration
def test_trigger_with_a_huge_body__fires_after_reading_only_the_alert_cap(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    _, secret = services.trigger_create(
        actor=Actor.cli("tester"),
        name="datadog",
        flag=world["checkout"],
        environment=world["production"],
    )
    head = (
        f"POST /api/v1/triggers/{secret}/ HTTP/1.1\nHost: 127.0.0.1\n"
        "Content-Type: application/json\nContent-Length: 20000000\n"
    )
    status, headers, body = _send_partly(live_edge, head, b" " * (ALERT_BODY_MAX_BYTES + 10))
    assert status == 200 and body["killed"] is True, body
    assert body["alert_body"]["used"] is False and headers["connection"] == "close"
    assert FlagState.objects.get(flag=world["checkout"], environment=world["production"]).killed


@pytest.fixture
def fire(db: None, make_flag: Any, production: Any, actor: Actor) -> Any:
    """Fire a kill trigger from a given peer with a given X-Forwarded-For; the audited address."""
    _, secret = services.trigger_create(
        actor=actor, name="datadog", flag=make_flag("new-checkout"), environment=production
    )

    def fire_from(peer: str, forwarded_for: str | None = None) -> str:
        headers: dict[str, Any] = {"REMOTE_ADDR": peer}
        if forwarded_for is not None:
            headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
        response = Client().post(f"/api/v1/triggers/{secret}/", **headers)
        assert response.status_code == 200, response.content
        event = AuditEvent.objects.filter(actor="trigger:datadog").latest("sequence")
        return event.source_ip

    return fire_from


def test_forwarded_for_from_an_untrusted_peer__ignored(fire: Any) -> None:
    assert fire("198.51.100.7", "203.0.113.9") == "198.51.100.7"


def test_forwarded_for_from_a_trusted_proxy__the_hop_before_the_proxies(
    fire: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    assert fire("10.1.2.3", "198.51.100.1, 203.0.113.9, 10.0.0.5") == "203.0.113.9"


@pytest.mark.parametrize(
    "forwarded_for", ["x" * 60, "fe80::1%" + "e" * 60, "203.0.113.9, not-an-address", ""]
)
def test_forwarded_for_that_is_no_address__kill_recorded_with_the_proxys_address(
    fire: Any, settings: Any, forwarded_for: str
) -> None:
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    assert fire("10.1.2.3", forwarded_for) == "10.1.2.3"


def test_peer_address_that_is_no_address__kill_still_recorded(fire: Any) -> None:
    # e.g. behind a server that put a 60-character X-Forwarded-For in the peer address
    assert fire("y" * 60) == ""


def test_trusted_proxies_setting__bad_range_refuses_to_start() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import flagsvc.settings_test"],
        env={**os.environ, "TRUSTED_PROXIES": "10.0.0.0/33"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "TRUSTED_PROXIES" in result.stderr


@pytest.mark.integration
def test_kill_through_uvicorn_with_a_60_character_forwarded_for__200_and_audited(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # uvicorn (proxy headers on, as in this fixture) hands a 60-character "address" on
    client = live_edge.client(world["tokens"]["kill"], **{"X-Forwarded-For": "x" * 60})
    response = client.post("/api/v1/flags/new-checkout/kill/", json={"reason": "incident"})
    assert response.status_code == 200, response.text
    assert AuditEvent.objects.get(action="flag.kill").source_ip in ("", "127.0.0.1")
