"""GET /api/v1/sdk/snapshot/: the environment's document from memory, ETag/304, gzip, scopes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from flags import publish, services
from flags.selectors import snapshot_build
from tests.edge.conftest import LiveEdge, environment, flag, token_named, wait_for

PATH = "/api/v1/sdk/snapshot/"


def test_snapshot__server_key__returns_the_environment_document_with_a_strong_etag(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    response = live_edge.client(world["tokens"]["server"]).get(PATH)
    assert response.status_code == 200
    assert response.json() == snapshot_build(environment("production"))
    production = environment("production")
    assert response.headers["etag"] == f'"production:{production.version}-{production.revision}"'
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-type"] == "application/json"


def test_snapshot__matching_if_none_match__304_without_body(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["server"])
    etag = client.get(PATH).headers["etag"]
    response = client.get(PATH, headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.content == b""
    assert response.headers["etag"] == etag


def test_snapshot__gzip__same_document_compressed_with_its_own_etag(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["server"])
    plain = client.get(PATH, headers={"Accept-Encoding": "identity"})
    raw = client.send(
        client.build_request("GET", PATH, headers={"Accept-Encoding": "gzip"}), stream=True
    )
    compressed = b"".join(raw.iter_raw())
    assert raw.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(compressed)) == plain.json()
    assert raw.headers["etag"].endswith(':gzip"')
    assert (
        client.get(
            PATH, headers={"Accept-Encoding": "gzip", "If-None-Match": plain.headers["etag"]}
        ).status_code
        == 304
    )


def test_snapshot__after_a_change__new_version_and_old_etag_no_longer_matches(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["server"])
    old = client.get(PATH)
    services.flag_kill(
        actor=world["actor"],
        flag=flag("new-checkout"),
        environment=world["production"],
        reason="incident",
    )
    wait_for(
        lambda: client.get(PATH, headers={"If-None-Match": old.headers["etag"]}).status_code == 200
    )
    new = client.get(PATH).json()
    assert new["version"] == old.json()["version"] + 1
    assert new["flags"]["new-checkout"]["kill"]["reason"] == "incident"


@pytest.mark.parametrize(
    ("token", "query", "status", "message"),
    [
        (None, "", 401, "No key"),
        ("fsv_server_not-a-real-token", "", 401, "Unknown token"),
        ("revoked", "", 401, "was revoked"),
        ("client", "", 403, "client token cannot use this endpoint"),
        ("kill", "", 403, "kill token cannot use this endpoint"),
        ("admin", "", 400, "must name the environment"),
        ("staging_server", "?environment=production", 403, "belongs to 'staging'"),
    ],
)
def test_snapshot__refused(
    live_edge: LiveEdge,
    world: dict[str, Any],
    token: str | None,
    query: str,
    status: int,
    message: str,
) -> None:
    raw = world["tokens"].get(token, token) if token else None
    response = live_edge.client(raw).get(PATH + query)
    assert response.status_code == status
    body = response.json()
    assert message in body["error"]["message"] and body["error"]["code"]


def test_snapshot__admin_token_naming_the_environment__allowed(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    response = live_edge.client(world["tokens"]["admin"]).get(PATH + "?environment=staging")
    assert response.status_code == 200 and response.json()["environment"] == "staging"


def test_token_revoked__stops_working_at_once(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    client = live_edge.client(world["tokens"]["server"])
    assert client.get(PATH).status_code == 200
    services.token_revoke(actor=world["actor"], token=token_named("server-key"))
    wait_for(lambda: client.get(PATH).status_code == 401, timeout=2)


def test_new_token__works_at_once(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    _, raw = services.token_issue(
        actor=world["actor"], kind="server", name="fresh", environment=world["production"]
    )
    assert live_edge.client(raw).get(PATH).status_code == 200


def test_cold_cache__reads_the_database_once_and_repairs_the_store(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    edge = live_edge.application.state.edge
    edge.state.environments.clear()
    publish.local_store().clear()
    if django_settings.REDIS_URL:
        redis.Redis.from_url(django_settings.REDIS_URL).flushdb()
    response = live_edge.client(world["tokens"]["server"]).get(PATH)
    assert response.status_code == 200
    stored = publish.store().current("production", environment("production").lineage)
    assert stored is not None and stored.version == response.json()["version"]


def test_never_serves_an_older_version_after_a_newer_one(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    client = live_edge.client(world["tokens"]["server"])
    current = client.get(PATH).json()
    stale = dict(current, version=current["version"] - 1)
    assert live_edge.application.state.edge.state.install(publish.encode_snapshot(stale)) is None
    assert client.get(PATH).json()["version"] == current["version"]
