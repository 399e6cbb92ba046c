"""The database is the truth: no cache (Redis or in-process) hides a write, whatever it holds."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings

from flags import publish, services
from flags.models import Environment, FlagState
from tests.edge.conftest import LiveEdge, environment, flag, wait_for
from tests.edge.test_stream import StreamReader

OFREP = "/ofrep/v1/evaluate/flags/new-checkout"
CONTEXT = {"context": {"targetingKey": "user-1"}}


@pytest.fixture(autouse=True)
def quick_watch(settings: Any) -> None:
    settings.EDGE_WATCH_SECONDS = 0.3


def evaluate(edge: LiveEdge, token: str) -> dict[str, Any]:
    return dict(edge.client(token).post(OFREP, json=CONTEXT).json())


def restore_backup(saved_environment: dict[str, Any], saved_state: dict[str, Any]) -> None:
    """What a restore from backup does to the rows: back to what they were, caches untouched."""
    Environment.objects.filter(key="production").update(**saved_environment)
    FlagState.objects.filter(flag__key="new-checkout", environment__key="production").update(
        **saved_state
    )


def backup() -> tuple[dict[str, Any], dict[str, Any]]:
    production = environment("production")
    state: dict[str, Any] = dict(
        FlagState.objects.filter(flag__key="new-checkout", environment=production).values().get()
    )
    del state["id"]
    return {"version": production.version, "revision": production.revision}, state


def test_kill_after_a_restore_behind_the_cache__reaches_every_stream_and_ofrep(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # Given a backup, then more changes that every cache has seen
    token = world["tokens"]["server"]
    saved = backup()
    checkout = flag("new-checkout")
    for share in (5000, 7500):
        services.flag_state_update(
            actor=world["actor"],
            flag=checkout,
            environment=world["production"],
            default_serve={
                "split": [
                    {"variant": "on", "weight": share},
                    {"variant": "off", "weight": 10000 - share},
                ]
            },
        )
    wait_for(
        lambda: (
            live_edge.client(token).get("/api/v1/sdk/snapshot/").json()["version"]
            == environment("production").version
        )
    )
    # When the database is restored from the backup (the caches keep the later versions)
    restore_backup(*saved)
    reader = StreamReader(live_edge, token)
    try:
        wait_for(lambda: bool(reader.events))
        # and the commander kills the flag
        outcome = services.flag_kill(
            actor=world["actor"],
            flag=checkout,
            environment=environment("production"),
            reason="500s",
        )
        # Then the kill is what every SDK path serves, within a second or two
        wait_for(lambda: evaluate(live_edge, token)["reason"] == "DISABLED", timeout=3)
        wait_for(
            lambda: any(
                data.get("version") == outcome.environment_version for *_, data in reader.events
            ),
            timeout=3,
        )
        snapshot = live_edge.client(token).get("/api/v1/sdk/snapshot/").json()
        assert snapshot["version"] == outcome.environment_version
        assert snapshot["flags"]["new-checkout"]["kill"]["reason"] == "500s"
    finally:
        reader.close()
    production = environment("production")
    stored = publish.store().current_document("production", production.lineage)
    assert stored is not None and publish.document_identity(stored) == (
        production.lineage,
        production.version,
        production.revision,
    )


def test_restore_behind_the_cache__without_any_write__converges_to_the_database(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    token = world["tokens"]["server"]
    saved = backup()
    services.flag_kill(
        actor=world["actor"], flag=flag("new-checkout"), environment=world["production"], reason="x"
    )
    wait_for(lambda: evaluate(live_edge, token)["reason"] == "DISABLED")
    restore_backup(*saved)  # the backup predates the kill
    wait_for(lambda: evaluate(live_edge, token)["reason"] != "DISABLED", timeout=3)
    snapshot = live_edge.client(token).get("/api/v1/sdk/snapshot/")
    assert snapshot.json()["version"] == saved[0]["version"]
    assert snapshot.headers["etag"] == f'"production:{saved[0]["version"]}-{saved[0]["revision"]}"'


def test_another_deployment_sharing_the_redis__never_replaces_this_ones_snapshots(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    if not django_settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) to share between deployments")
    token = world["tokens"]["server"]
    ours = live_edge.client(token).get("/api/v1/sdk/snapshot/").json()
    # Another installation's production, far ahead, stored and announced on the same Redis
    foreign = dict(ours, lineage="0ther0ther00", version=ours["version"] + 1000, revision="f0f0")
    foreign["flags"] = {}
    assert publish.store().store_and_publish(
        publish.encode_snapshot(foreign),
        publish.change_message(publish.encode_snapshot(foreign), None),
    )
    # Our own next write still lands, and nothing of theirs is served
    services.flag_kill(
        actor=world["actor"], flag=flag("new-checkout"), environment=world["production"], reason="x"
    )
    wait_for(lambda: evaluate(live_edge, token)["reason"] == "DISABLED")
    served = live_edge.client(token).get("/api/v1/sdk/snapshot/").json()
    assert served["lineage"] == ours["lineage"] and "new-checkout" in served["flags"]
    assert served["version"] == environment("production").version


def test_stale_store_pointer__next_publish_replaces_it_with_the_database_snapshot(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    production = environment("production")
    stale = publish.snapshot_build_consistent("production")
    assert stale is not None
    stale = dict(stale, version=production.version + 50, revision="5ta1e")
    publish.store().store_and_publish(
        publish.encode_snapshot(stale), publish.change_message(publish.encode_snapshot(stale), None)
    )
    outcome = services.flag_kill(
        actor=world["actor"], flag=flag("new-checkout"), environment=production, reason="y"
    )
    production.refresh_from_db()
    stored = publish.store().current_document("production", production.lineage)
    assert stored is not None
    assert (stored["version"], stored["revision"]) == (
        outcome.environment_version,
        production.revision,
    )
    wait_for(lambda: evaluate(live_edge, world["tokens"]["server"])["reason"] == "DISABLED")
