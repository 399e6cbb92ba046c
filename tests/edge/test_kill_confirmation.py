"""A kill is confirmed: its answer says how many live edge processes serve it, and how fast."""

from __future__ import annotations

import io
import re
import time
from typing import Any

from django.core.management import call_command

from flags import propagation
from tests.edge.conftest import LiveEdge, environment, wait_for

KILL = "/api/v1/flags/new-checkout/kill/"
RESTORE = "/api/v1/flags/new-checkout/restore/"
BODY = {"environment": "production", "reason": "checkout 500s"}


def reporting(name: str) -> bool:
    return any(report.name == name for report in propagation.reports())


def test_kill_and_restore_answers__confirmed_by_the_live_edge_process(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    wait_for(lambda: reporting(propagation.edge_name()))
    with live_edge.client(world["tokens"]["kill"]) as client:
        killed = client.post(KILL, json=BODY).json()
        restored = client.post(RESTORE, json=BODY).json()
    for answer in (killed, restored):
        confirmation = answer["propagation"]
        assert confirmation["complete"] is True
        assert (confirmation["confirmed"], confirmation["live_processes"]) == (1, 1)
        assert re.fullmatch(
            r"confirmed by 1 of 1 edge processes in \d+ ms", confirmation["message"]
        )
        assert confirmation["elapsed_ms"] < 1000 and confirmation["unconfirmed"] == []


def test_kill_answer__names_a_live_process_that_did_not_install_it(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    # Given a process that reports (it is alive) but is stuck on an old version
    production = environment("production")
    stuck = propagation.EdgeReport(
        "web-7:4242", time.time(), {"production": (production.lineage, 1, "old", 0.0)}
    )
    propagation.report_store(stuck)
    wait_for(lambda: reporting(propagation.edge_name()))
    started = time.monotonic()
    with live_edge.client(world["tokens"]["kill"]) as client:
        answer = client.post(KILL, json=BODY).json()
    waited = time.monotonic() - started
    confirmation = answer["propagation"]
    assert confirmation["complete"] is False
    assert confirmation["unconfirmed"] == ["web-7:4242"]
    assert (confirmation["confirmed"], confirmation["live_processes"]) == (1, 2)
    assert "confirmed by 1 of 2 edge processes" in confirmation["message"]
    assert "NOT confirmed by web-7:4242 (serving v1)" in confirmation["message"]
    assert 0.9 < waited < 3  # it waited about a second for the stuck one, not more


def test_active_kills__say_whether_each_kill_is_live_everywhere(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    wait_for(lambda: reporting(propagation.edge_name()))
    with live_edge.client(world["tokens"]["kill"]) as client:
        client.post(KILL, json=BODY)
        (kill,) = client.get("/api/v1/kills/").json()["kills"]
    assert kill["flag"] == "new-checkout"
    assert kill["propagation"]["complete"] is True
    assert kill["propagation"]["message"].startswith("confirmed by 1 of 1 edge processes")


def test_cli_kill__prints_the_confirmation(live_edge: LiveEdge, world: dict[str, Any]) -> None:
    wait_for(lambda: reporting(propagation.edge_name()))
    out = io.StringIO()
    call_command("kill", "new-checkout", "-e", "production", "-r", "cli", stdout=out)
    assert re.search(r"Propagation: confirmed by 1 of 1 edge processes in \d+ ms\.", out.getvalue())


def test_kill_without_any_edge_process__answers_at_once_and_says_so(
    world: dict[str, Any],
) -> None:
    out = io.StringIO()
    started = time.monotonic()
    call_command("kill", "new-checkout", "-e", "production", "-r", "no web", stdout=out)
    assert time.monotonic() - started < 0.9
    assert "not confirmed: no live edge process is reporting" in out.getvalue()


def test_kill_at_the_edge__same_answer_as_the_api_view_and_counted(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    from django.test import Client

    wait_for(lambda: reporting(propagation.edge_name()))
    with live_edge.client(world["tokens"]["kill"]) as client:
        edge_answer = client.post(KILL, json=BODY).json()  # the edge's fast path
        client.post(RESTORE, json=BODY)
        metrics_text = client.get("/metrics").text
    view = Client(HTTP_AUTHORIZATION=f"Bearer {world['tokens']['kill']}")
    view_answer = view.post(KILL, BODY, content_type="application/json").json()  # DRF
    assert set(edge_answer) == set(view_answer)
    for answer in (edge_answer, view_answer):
        assert answer["killed"] is True and answer["changed"] is True
        assert answer["kill"]["by"] == "kill-key" and answer["kill"]["reason"] == BODY["reason"]
    assert view_answer["environment_version"] == edge_answer["environment_version"] + 2
    assert 'endpoint="edge:flag-kill"' in metrics_text


def test_kill_at_the_edge__bad_input_is_answered_by_the_api_view(
    live_edge: LiveEdge, world: dict[str, Any]
) -> None:
    with live_edge.client(world["tokens"]["kill"]) as client:
        missing = client.post(KILL, json={"environment": "production"})
        unknown = client.post("/api/v1/flags/no-such-flag/kill/", json=BODY)
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["fields"]
    assert unknown.status_code == 404 and unknown.json()["error"]["code"]
