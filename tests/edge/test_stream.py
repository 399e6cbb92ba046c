"""GET /api/v1/sdk/stream/: SSE from a real server, read by a real HTTP client."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import httpx
import pytest

from flags import services
from tests.edge.conftest import LiveEdge, flag, token_named, wait_for

PATH = "/api/v1/sdk/stream/"


class StreamReader:
    """Reads an SSE stream in a thread; ``events`` are (received_at, event, id, data)."""

    def __init__(self, edge: LiveEdge, token: str | None = None, **headers: str) -> None:
        self.events: list[tuple[float, str, str, Any]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.body: Any = None  # a refusal's JSON body
        self.headers: dict[str, str] = {}
        self._response: httpx.Response | None = None
        self._client = edge.client(token, **headers)
        self._stop = threading.Event()
        self.ended = threading.Event()  # the server ended the stream (or it failed)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", PATH, timeout=httpx.Timeout(10, read=30)) as response:
                self._response = response
                if response.status_code != 200:
                    self.body = json.loads(response.read())
                self.status, self.headers = response.status_code, dict(response.headers)
                if self.status != 200:
                    return
                event, event_id, data = "message", "", ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and data:
                        self.events.append((time.monotonic(), event, event_id, json.loads(data)))
                        event, event_id, data = "message", "", ""
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        """Hang up: close the connection under the reading thread, as a client process exiting would."""
        self._stop.set()
        if self._response is not None:
            stream = self._response.extensions.get("network_stream")
            if stream is not None:
                with contextlib.suppress(OSError):  # already closed
                    stream.get_extra_info("socket").shutdown(2)
        self._client.close()
        self._thread.join(timeout=5)


@pytest.fixture
def reader_factory(live_edge: LiveEdge) -> Any:
    readers: list[StreamReader] = []

    def make(token: str | None = None, **headers: str) -> StreamReader:
        reader = StreamReader(live_edge, token, **headers)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


def test_stream__on_connect__sends_the_current_version(
    reader_factory: Any, world: dict[str, Any]
) -> None:
    reader = reader_factory(world["tokens"]["server"])
    wait_for(lambda: reader.events)
    _, event, event_id, data = reader.events[0]
    assert reader.status == 200 and reader.headers["content-type"].startswith("text/event-stream")
    world["production"].refresh_from_db()
    assert event == "version" and data == {
        "environment": "production",
        "version": world["production"].version,
    }
    assert event_id == str(data["version"])


def test_stream__kill__server_stream_gets_a_patch_within_milliseconds(
    reader_factory: Any, world: dict[str, Any]
) -> None:
    reader = reader_factory(world["tokens"]["server"])
    wait_for(lambda: reader.events)
    started = time.monotonic()
    outcome = services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="errors",
    )
    wait_for(lambda: len(reader.events) >= 2, timeout=3)
    received, event, event_id, data = reader.events[1]
    assert event == "patch" and int(event_id) == outcome.environment_version == data["version"]
    assert data["previous_version"] == data["version"] - 1
    assert data["flags"]["new-checkout"]["kill"]["reason"] == "errors"
    assert received - started < 1.0


def test_stream__client_key__gets_versions_never_rules(
    reader_factory: Any, world: dict[str, Any]
) -> None:
    reader = reader_factory(world["tokens"]["client"])
    wait_for(lambda: reader.events)
    services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="errors",
    )
    wait_for(lambda: len(reader.events) >= 2)
    assert [e[1] for e in reader.events] == ["version", "version"]
    assert all(set(e[3]) == {"environment", "version"} for e in reader.events)


def test_stream__client_key_in_query__works_for_browser_event_sources(
    reader_factory: Any, live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    with (
        httpx.Client(base_url=live_edge.url, headers={"Origin": "https://shop.example"}) as client,
        client.stream("GET", PATH + f"?api_key={world['tokens']['client']}") as response,
    ):
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"


def test_stream__last_event_id__replays_the_missed_patches(
    reader_factory: Any, world: dict[str, Any]
) -> None:
    first = reader_factory(world["tokens"]["server"])
    wait_for(lambda: first.events)
    seen = int(first.events[0][2])
    services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="one",
    )
    services.flag_restore(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="two",
    )
    wait_for(lambda: len(first.events) >= 3)
    again = reader_factory(world["tokens"]["server"], **{"Last-Event-ID": str(seen)})
    wait_for(lambda: len(again.events) >= 2)
    assert [(e[1], int(e[2])) for e in again.events] == [("patch", seen + 1), ("patch", seen + 2)]


def test_stream__keep_alive_comments(
    reader_factory: Any, world: dict[str, Any], settings: Any
) -> None:
    settings.STREAM_KEEPALIVE_SECONDS = 0.2
    reader = reader_factory(world["tokens"]["server"])
    wait_for(lambda: len(reader.comments) >= 2, timeout=3)
    assert reader.comments[0] == ": keep-alive"


def test_stream__closed_by_client__subscriber_removed(
    live_edge: LiveEdge, reader_factory: Any, world: dict[str, Any]
) -> None:
    state = live_edge.application.state.edge.state
    reader = reader_factory(world["tokens"]["server"])
    wait_for(lambda: len(state.subscribers["production"]) == 1)
    reader.close()
    wait_for(lambda: len(state.subscribers["production"]) == 0)


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("kill", 403), ("revoked", 401)])
def test_stream__refused(
    reader_factory: Any, world: dict[str, Any], token: str | None, status: int
) -> None:
    reader = reader_factory(world["tokens"][token] if token else None)
    wait_for(lambda: reader.status is not None)
    assert reader.status == status


def revoke_server_key_then_kill(world: dict[str, Any]) -> float:
    """Revoke the world's server key, then kill a flag right after; returns when it revoked."""
    revoked_at = time.monotonic()
    services.token_revoke(actor=world["actor"], token=token_named("server-key"))
    services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="after the revocation",
    )
    return revoked_at


def test_stream__key_revoked__stream_ends_within_a_second_and_never_gets_the_next_patch(
    reader_factory: Any, world: dict[str, Any]
) -> None:
    # Given a server key's open stream
    reader = reader_factory(world["tokens"]["server"])
    other = reader_factory(world["tokens"]["client"])
    wait_for(lambda: reader.events and other.events)
    # When the key is revoked and a flag changes right after
    revoked_at = revoke_server_key_then_kill(world)
    # Then its stream ends within a second, with no patch, while other keys' streams go on
    assert reader.ended.wait(timeout=1.0), "the revoked key's stream is still open"
    assert time.monotonic() - revoked_at < 1.0
    assert [event for _, event, _, _ in reader.events] == ["version"]
    wait_for(lambda: len(other.events) >= 2)
    assert not other.ended.is_set()


def test_stream__per_key_cap__refused_with_429_retry_after_and_counted(
    live_edge: LiveEdge, reader_factory: Any, world: dict[str, Any], settings: Any
) -> None:
    settings.STREAM_MAX_PER_KEY = 2
    first, second = (reader_factory(world["tokens"]["server"]) for _ in range(2))
    wait_for(lambda: first.events and second.events)

    third = reader_factory(world["tokens"]["server"])
    wait_for(lambda: third.status is not None)

    assert third.status == 429 and int(third.headers["retry-after"]) > 0
    assert "STREAM_MAX_PER_KEY" in third.body["error"]["message"]
    assert third.body["error"]["code"] == "too_many_streams"
    other_key = reader_factory(world["tokens"]["client"])
    wait_for(lambda: other_key.events)
    metrics = live_edge.client().get("/metrics").text
    assert 'flagsvc_stream_refusals_total{cap="per_key"} 1.0' in metrics
    # A closed stream frees its place
    first.close()
    fourth = reader_factory(world["tokens"]["server"])
    wait_for(lambda: fourth.status is not None)
    assert fourth.status == 200


def test_stream__per_process_cap__refused_for_every_key(
    reader_factory: Any, world: dict[str, Any], settings: Any
) -> None:
    settings.STREAM_MAX_PER_PROCESS = 1
    first = reader_factory(world["tokens"]["server"])
    wait_for(lambda: first.events)

    second = reader_factory(world["tokens"]["client"])
    wait_for(lambda: second.status is not None)

    assert second.status == 429 and second.headers["retry-after"].isdigit()
    assert "STREAM_MAX_PER_PROCESS" in second.body["error"]["message"]
