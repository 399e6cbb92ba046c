"""The rollout plan endpoints: create or replace, read the timeline, pause/resume/abort/skip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import rollouts, services
from flags.models import Environment, Flag, FlagState, RolloutPlan
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db

PLAN = "/api/v1/flags/new-checkout/environments/production/rollout-plan/"


@pytest.fixture
def checkout(make_flag: Callable[..., Flag], production: Environment, actor: Actor) -> Flag:
    flag = make_flag("new-checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    return flag


def far_future_steps() -> list[dict[str, Any]]:
    soon = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    return [
        {"percentage": 1},
        {"percentage": 5, "after": "30m"},
        {"percentage": 25, "at": soon.strftime("%Y-%m-%dT%H:%M:%S"), "timezone": "Europe/Berlin"},
    ]


def test_put__creates_the_plan_with_a_timeline(api: Client, checkout: Flag) -> None:
    response = send(api, "PUT", PLAN, {"steps": far_future_steps(), "reason": "launch"})
    assert response.status_code == 201, response.content
    assert response["Location"] == PLAN
    plan = response.json()
    assert plan["status"] == "scheduled" and plan["flag"] == "new-checkout"
    assert plan["variant"] == "on" and plan["baseline_variant"] == "off" and plan["rule"] is None
    assert [s["status"] for s in plan["steps"]] == ["next", "later", "later"]
    assert [s["percentage"] for s in plan["steps"]] == [1, 5, 25]
    assert plan["steps"][0]["due_at"] == plan["next_due_at"]
    assert plan["steps"][1]["due_at"] is not None  # projected: 30 minutes after step 1
    assert plan["steps"][2]["timezone"] == "Europe/Berlin"
    event = AuditEvent.objects.get(action="rollout_plan.create")
    assert event.actor == "ci-bot" and event.reason == "launch"
    assert send(api, "GET", PLAN).json() == plan


def test_put__again__replaces_the_active_plan(api: Client, checkout: Flag) -> None:
    first = send(api, "PUT", PLAN, {"steps": far_future_steps()}).json()
    response = send(api, "PUT", PLAN, {"steps": [{"percentage": 10}]})
    assert response.status_code == 200
    second = response.json()
    assert second["replaces"] == first["id"] and second["status"] == "scheduled"
    assert RolloutPlan.objects.get(pk=first["id"]).status == "aborted"
    assert AuditEvent.objects.filter(action="rollout_plan.replace").count() == 1


def test_put__bad_steps__400_naming_each_field_and_nothing_created(
    api: Client, checkout: Flag
) -> None:
    response = send(
        api,
        "PUT",
        PLAN,
        {
            "steps": [
                {"percentage": 10},
                {"percentage": 5, "after": "30m"},
                {"percentage": 12.345, "after": "soon"},
                {"percentage": 50, "at": "2020-01-01T00:00:00Z"},
                {"percentage": 60, "at": "2099-01-01T09:00:00"},
            ]
        },
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == {
        "steps[1].percentage",
        "steps[2].percentage",
        "steps[2].after",
        "steps[3].at",
        "steps[4].at",
    }
    assert "allow_decrease" in error["fields"]["steps[1].percentage"]
    assert "not in the future" in error["fields"]["steps[3].at"]
    assert "has no offset" in error["fields"]["steps[4].at"]
    assert not RolloutPlan.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="rollout_plan").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "steps"),
        ({"steps": "1,5,25"}, "steps"),
        ({"steps": [{"percentage": 1}], "speed": "fast"}, "speed"),
        ({"steps": [{"percentage": 1}], "allow_decrease": "yes"}, "allow_decrease"),
        ({"steps": [{"percentage": 1}], "rule": "nope"}, "rule"),
        ({"steps": [{"percentage": 1}], "timezone": "Berlin"}, "timezone"),
        ({"steps": [{"percentage": 1}], "variant": "maybe"}, "variant"),
        ({"steps": [{"percentage": 1, "after": 1}] * 51}, "steps"),
        ({"steps": [{"percentage": 1, "after": "5" * 5000 + "s"}]}, "steps[0].after"),
        ({"steps": [{"percentage": 1, "after": "P" + "5" * 5000 + "D"}]}, "steps[0].after"),
    ],
)
def test_put__malformed_body__400_on_the_field(
    api: Client, checkout: Flag, body: dict[str, Any], field: str
) -> None:
    response = send(api, "PUT", PLAN, body)
    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"]


def test_put__non_boolean_flag__must_name_the_variant_pair(
    api: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    make_flag("theme", type="string", variants={"light": "l", "dark": "d"}, off_variant="light")
    path = "/api/v1/flags/theme/environments/production/rollout-plan/"
    refused = send(api, "PUT", path, {"steps": [{"percentage": 10}]})
    assert refused.status_code == 400
    assert {"variant", "baseline_variant"} <= set(error_of(refused)["fields"])
    response = send(
        api,
        "PUT",
        path,
        {"steps": [{"percentage": 10}], "variant": "dark", "baseline_variant": "light"},
    )
    assert response.status_code == 201 and response.json()["variant"] == "dark"


def test_get__no_plan__404_saying_how_to_create_one(api: Client, checkout: Flag) -> None:
    response = send(api, "GET", PLAN)
    assert response.status_code == 404
    assert "Create one with PUT" in error_of(response)["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/flags/nope/environments/production/rollout-plan/",
        "/api/v1/flags/new-checkout/environments/nope/rollout-plan/",
    ],
)
def test_unknown_flag_or_environment__404(api: Client, checkout: Flag, path: str) -> None:
    assert send(api, "PUT", path, {"steps": [{"percentage": 1}]}).status_code == 404


def test_pause_resume_skip_abort__through_the_api(
    api: Client, checkout: Flag, production: Environment
) -> None:
    send(api, "PUT", PLAN, {"steps": far_future_steps()})
    paused = send(api, "POST", PLAN + "pause/", {"reason": "watching"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["status_reason"] == "paused by ci-bot: watching"
    assert paused.json()["next_due_at"] is None
    skipped = send(api, "POST", PLAN + "skip/", {"step": 2, "reason": "fine"})
    assert skipped.status_code == 200, skipped.content
    body = skipped.json()
    assert [s["status"] for s in body["steps"]] == ["skipped", "done", "next"]
    assert body["status"] == "paused" and body["last_applied_percentage"] == 5
    state = FlagState.objects.get(flag=checkout, environment=production)
    assert state.default_serve["split"][0] == {"variant": "on", "weight": 500}
    resumed = send(api, "POST", PLAN + "resume/", {})
    assert resumed.json()["status"] == "running" and resumed.json()["next_due_at"]
    aborted = send(api, "POST", PLAN + "abort/", {"reason": "enough"})
    assert aborted.json()["status"] == "aborted"
    assert [s["status"] for s in aborted.json()["steps"]] == ["skipped", "done", "cancelled"]
    again = send(api, "POST", PLAN + "resume/")
    assert again.status_code == 409
    assert error_of(again)["code"] == "rollout_plan_conflict"
    assert "is aborted" in error_of(again)["message"]
    assert send(api, "GET", PLAN).json()["status"] == "aborted"  # the latest plan stays readable


def test_delete__aborts_with_the_reason_header(api: Client, checkout: Flag) -> None:
    send(api, "PUT", PLAN, {"steps": far_future_steps()})
    response = send(api, "DELETE", PLAN, None, **{"X-Reason": "wrong flag"})
    assert response.status_code == 200 and response.json()["status"] == "aborted"
    assert AuditEvent.objects.get(action="rollout_plan.abort").reason == "wrong flag"


def test_skip__backwards_or_out_of_range__refused(api: Client, checkout: Flag) -> None:
    send(api, "PUT", PLAN, {"steps": far_future_steps()})
    send(api, "POST", PLAN + "skip/", {"step": 2})
    backwards = send(api, "POST", PLAN + "skip/", {"step": 1})
    assert backwards.status_code == 409 and "only goes forward" in error_of(backwards)["message"]
    assert send(api, "POST", PLAN + "skip/", {"step": 9}).status_code == 400
    assert send(api, "POST", PLAN + "skip/", {"step": 0}).status_code == 400
    assert send(api, "POST", PLAN + "skip/", {}).status_code == 400


def test_resume__killed_flag__409_saying_restore_first(
    api: Client, checkout: Flag, production: Environment, actor: Actor
) -> None:
    send(api, "PUT", PLAN, {"steps": far_future_steps()})
    services.flag_kill(actor=actor, flag=checkout, environment=production, reason="incident")
    plan = send(api, "GET", PLAN).json()
    assert plan["status"] == "paused" and "flag killed" in plan["status_reason"]
    response = send(api, "POST", PLAN + "resume/")
    assert response.status_code == 409
    assert "restore it first" in error_of(response)["message"]


def test_get__after_steps_ran__shows_when_each_fell_due_and_was_applied(
    api: Client, checkout: Flag, production: Environment, actor: Actor
) -> None:
    plan = rollouts.rollout_plan_create(
        actor=actor, flag=checkout, environment=production, steps=far_future_steps()
    )
    rollouts.rollout_plan_advance(plan=plan)
    body = send(api, "GET", PLAN).json()
    first = body["steps"][0]
    assert first["status"] == "done" and first["applied_at"] and first["due_at"]
    assert body["status"] == "running" and body["last_applied_step"] == 1
    assert (
        body["steps"][1]["status"] == "next" and body["steps"][1]["due_at"] == body["next_due_at"]
    )


def test_schema__documents_the_plan_endpoints_and_the_step_shape(db: None) -> None:
    schema = Client().get("/api/schema/?format=json").json()
    assert set(
        schema["paths"][
            PLAN.replace("new-checkout", "{key}").replace("production", "{environment}")
        ]
    ) >= {
        "get",
        "put",
        "delete",
    }
    for action in ("pause", "resume", "abort", "skip"):
        path = "/api/v1/flags/{key}/environments/{environment}/rollout-plan/" + action + "/"
        assert "409" in schema["paths"][path]["post"]["responses"]
    body = schema["components"]["schemas"]["RolloutPlanWrite"]
    step = body["properties"]["steps"]["items"]
    assert step["required"] == ["percentage"] and {"at", "after", "timezone"} <= set(
        step["properties"]
    )
    plan = schema["components"]["schemas"]["RolloutPlan"]
    assert {"status", "steps", "next_due_at"} <= set(plan["properties"])
