"""Keys the edge does not know: bounded database lookups, a brief negative cache, bounded logs."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import pytest

from flags import publish, tokens
from flags.edge import errors
from flags.edge.fanout import Fanout
from flags.edge.sse import Subscriber
from flags.edge.state import EdgeState
from tests.edge.conftest import LiveEdge

BULK = "/ofrep/v1/evaluate/flags"
BODY = {"context": {"targetingKey": "u"}}


@pytest.fixture
def lookups(monkeypatch: Any) -> list[str]:
    """Every database lookup of a key the edge's token map does not hold."""
    seen: list[str] = []
    original = tokens.token_lookup

    def counted(raw: str) -> Any:
        seen.append(raw)
        return original(raw)

    monkeypatch.setattr(tokens, "token_lookup", counted)
    return seen


def test_unknown_keys__database_lookups_limited_per_address(
    live_edge: LiveEdge, world: dict[str, Any], lookups: list[str], settings: Any
) -> None:
    # Given an address trying random keys as fast as it can
    settings.SDK_UNKNOWN_KEY_LOOKUPS_PER_SECOND = 5
    live_edge.application.state.edge.state.key_lookups.limit = 5
    started = time.monotonic()
    statuses = [
        live_edge.client(f"fsv_server_{secrets.token_urlsafe(32)}").post(BULK, json=BODY)
        for _ in range(60)
    ]
    seconds = time.monotonic() - started
    # Then only a few reach the database; the rest are refused before any lookup
    assert len(lookups) <= 5 * (int(seconds) + 2), (len(lookups), seconds)
    refused = [r for r in statuses if r.status_code == 429]
    assert refused and refused[0].headers["retry-after"].isdigit()
    assert "unknown keys" in refused[0].json()["errorDetails"]
    assert {r.status_code for r in statuses} == {401, 429}
    # And a live key from the same address is unaffected
    assert live_edge.client(world["tokens"]["server"]).post(BULK, json=BODY).status_code == 200
    metrics = live_edge.client().get("/metrics").text
    assert 'flagsvc_edge_key_lookups_total{outcome="throttled"}' in metrics


def test_unknown_key__refused_again__from_the_negative_cache(
    live_edge: LiveEdge, world: dict[str, Any], lookups: list[str]
) -> None:
    client = live_edge.client("fsv_server_not-a-real-key")
    statuses = [client.post(BULK, json=BODY).status_code for _ in range(5)]
    assert statuses == [401] * 5 and len(lookups) == 1


def test_unknown_keys__logged_at_a_bounded_rate(
    live_edge: LiveEdge, world: dict[str, Any], caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="flags.edge")
    for _ in range(40):
        live_edge.client(f"fsv_client_{secrets.token_urlsafe(16)}").post(BULK, json=BODY)

    lines = [r.getMessage() for r in caplog.records if r.name == "flags.edge"]
    assert len(lines) == 1 and "401 unauthenticated" in lines[0]
    errors.bounded_refusals.flush()  # what the next interval's summary says
    summary = caplog.records[-1].getMessage()
    assert summary.startswith("39 more SDK requests refused") and "127.0.0.1: 39" in summary


class _Flow:
    def __init__(self, paused: bool) -> None:
        self.write_paused = paused


class _Cycle:
    """Stands in for uvicorn's response cycle: its send completes at once unless paused."""

    def __init__(self, paused: bool = False) -> None:
        self.flow = _Flow(paused)
        self.written: list[bytes] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.written.append(message["body"])


def test_deliver__idle_stream__written_in_place_without_waking_its_task() -> None:
    cycle = _Cycle()
    subscriber = Subscriber(kind="server", send=cycle.send)
    subscriber.deliver({"type": "http.response.body", "body": b"e1", "more_body": True}, b"e1")
    assert cycle.written == [b"e1"] and subscriber.queue.empty()


def test_deliver__paused_socket_or_events_pending__queued_in_order() -> None:
    paused = Subscriber(kind="server", send=_Cycle(paused=True).send)
    paused.deliver({"body": b"e1"}, b"e1")
    assert paused.queue.get_nowait() == b"e1"
    cycle = _Cycle()
    behind = Subscriber(kind="server", send=cycle.send)
    behind.queue.put_nowait(b"e1")  # the stream's task has not sent this one yet
    behind.deliver({"body": b"e2"}, b"e2")
    assert cycle.written == [] and [behind.queue.get_nowait() for _ in range(2)] == [b"e1", b"e2"]


def _document(version: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "environment": "production",
        "version": version,
        "lineage": "L",
        "revision": f"r{version}",
        "flags": {},
        "segments": {},
    }


def test_change_with_a_delta__patch_readers_told_before_install__client_streams_after() -> None:
    # Given an edge process serving version 1, with one server-key and one client-key stream
    state = EdgeState()
    state.install(publish.encode_snapshot(_document(1)))
    server, client = Subscriber(kind="server"), Subscriber(kind="client")
    state.subscribe("production", server)
    state.subscribe("production", client)
    fanout = Fanout(state)
    seen_while_fetching: dict[str, int] = {}

    async def fetch(environment: str, identity: Any) -> Any:
        seen_while_fetching.update(server=server.queue.qsize(), client=client.queue.qsize())
        return publish.encode_snapshot(_document(2))

    fanout._fetch = fetch  # type: ignore[method-assign]
    # When version 2 is announced with its delta
    delta = {"previous_version": 1, "flags": {}, "segments": {}}
    message = {"type": "snapshot", "environment": "production", "version": 2}
    asyncio.run(fanout.handle({**message, "lineage": "L", "revision": "r2", "delta": delta}))
    # Then the server stream had its patch before the bytes were fetched, and the client
    # stream (which asks this process again) heard only once version 2 was installed
    assert seen_while_fetching == {"server": 1, "client": 0}
    assert b"event: patch" in (server.queue.get_nowait() or b"")
    assert b"event: version" in (client.queue.get_nowait() or b"")
    current = state.current("production")
    assert current is not None and current.version == 2
    assert server.queue.empty() and client.queue.empty()  # each told exactly once
