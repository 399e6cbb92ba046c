"""Rollout plans in the admin: the timeline on the flag page and its actions, through the services."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import guardrails, rollouts, services
from flags.models import Environment, Flag, FlagState, GuardrailCheck, RolloutPlan

pytestmark = pytest.mark.django_db

STEPS: list[dict[str, Any]] = [
    {"percentage": 1},
    {"percentage": 5, "after": "30m"},
    {"percentage": 25, "after": "1h"},
]


@pytest.fixture
def checkout(make_flag: Callable[..., Flag], production: Environment, actor: Actor) -> Flag:
    flag = make_flag("new-checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    return flag


@pytest.fixture
def plan(checkout: Flag, production: Environment, actor: Actor) -> RolloutPlan:
    plan = rollouts.rollout_plan_create(
        actor=actor, flag=checkout, environment=production, steps=STEPS
    )
    rollouts.rollout_plan_advance(plan=plan)
    return plan


def page(client: Client, flag: Flag) -> str:
    response = client.get(reverse("admin:flags_flag_change", args=[flag.pk]))
    assert response.status_code == 200
    return response.content.decode()


def action_url(flag: Flag, plan: RolloutPlan, action: str) -> str:
    return reverse("admin:flags_flag_rollout_action", args=[flag.pk, plan.pk, action])


def test_flag_page__shows_each_environments_plan_as_a_timeline(
    admin_client: Client, checkout: Flag, plan: RolloutPlan
) -> None:
    html = page(admin_client, checkout)
    assert 'id="rollouts"' in html and f"Plan #{plan.pk}" in html
    assert "rollout-step-done" in html and "rollout-step-next" in html
    assert "rollout-step-later" in html
    assert html.index("rollout-step-done") < html.index("rollout-step-next")
    for action in ("pause", "skip", "abort"):
        assert action_url(checkout, plan, action) in html
    assert action_url(checkout, plan, "resume") not in html  # running: nothing to resume
    assert html.count("Schedule a ramp-up…") == 2  # development and staging have none


def test_pause_then_resume__from_the_admin__audited_as_the_staff_user(
    admin_client: Client, checkout: Flag, plan: RolloutPlan
) -> None:
    confirm = admin_client.get(action_url(checkout, plan, "pause"))
    assert confirm.status_code == 200 and "No step is applied" in confirm.content.decode()
    response = admin_client.post(action_url(checkout, plan, "pause"), {"reason": "error rate"})
    assert response.status_code == 302
    assert RolloutPlan.objects.get(pk=plan.pk).status == "paused"
    event = AuditEvent.objects.get(action="rollout_plan.pause")
    assert event.actor == "admin" and event.reason == "error rate"
    assert action_url(checkout, plan, "resume") in page(admin_client, checkout)
    admin_client.post(action_url(checkout, plan, "resume"), {})
    assert RolloutPlan.objects.get(pk=plan.pk).status == "running"


def test_skip__from_the_admin__offers_pending_steps_and_applies_the_chosen_one(
    admin_client: Client, checkout: Flag, production: Environment, plan: RolloutPlan
) -> None:
    form = admin_client.get(action_url(checkout, plan, "skip")).content.decode()
    assert "step 2: 5%" in form and "step 3: 25%" in form and "step 1: 1%" not in form
    admin_client.post(action_url(checkout, plan, "skip"), {"step": "3"})
    state = FlagState.objects.get(flag=checkout, environment=production)
    assert state.default_serve["split"][0]["weight"] == 2500
    assert AuditEvent.objects.get(action="rollout_plan.skip").actor == "admin"


def test_refused_action__says_why_and_changes_nothing(
    admin_client: Client, checkout: Flag, production: Environment, plan: RolloutPlan, actor: Actor
) -> None:
    services.flag_kill(actor=actor, flag=checkout, environment=production, reason="incident")
    response = admin_client.post(action_url(checkout, plan, "resume"), {}, follow=True)
    assert "Nothing was changed" in response.content.decode()
    assert "restore it first" in response.content.decode()
    assert RolloutPlan.objects.get(pk=plan.pk).status == "paused"


def test_schedule__from_the_admin__creates_the_plan(admin_client: Client, checkout: Flag) -> None:
    url = reverse("admin:flags_flag_rollout_plan", args=[checkout.pk]) + "?environment=staging"
    assert "Schedule a ramp-up" in admin_client.get(url).content.decode()
    response = admin_client.post(
        url,
        {"environment": "staging", "steps": json.dumps(STEPS), "reason": "go", "timezone": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = RolloutPlan.objects.get(environment__key="staging")
    assert plan.status == "scheduled" and plan.steps.count() == 3
    assert AuditEvent.objects.get(action="rollout_plan.create").actor == "admin"


def test_schedule__bad_steps__shown_on_the_form_and_nothing_created(
    admin_client: Client, checkout: Flag
) -> None:
    url = reverse("admin:flags_flag_rollout_plan", args=[checkout.pk])
    response = admin_client.post(
        url,
        {
            "environment": "staging",
            "steps": json.dumps([{"percentage": 50}, {"percentage": 10, "after": 60}]),
        },
    )
    assert response.status_code == 200
    assert "steps[1].percentage" in response.content.decode()
    assert not RolloutPlan.objects.exists()


def test_flag_change_form__still_saves_with_the_timeline_on_the_page(
    admin_client: Client, checkout: Flag, plan: RolloutPlan
) -> None:
    # The timeline is part of the page, not a formset: the flag form posts as before.
    from tests.flags.test_admin import _change_form_data

    data = _change_form_data(checkout)
    data["owner"] = "payments"
    response = admin_client.post(reverse("admin:flags_flag_change", args=[checkout.pk]), data)
    assert response.status_code == 302
    assert Flag.objects.get(pk=checkout.pk).owner == "payments"


def test_flag_page__timeline_shows_the_plans_guardrail_checks_and_why_a_step_is_held(
    admin_client: Client, checkout: Flag, production: Environment, plan: RolloutPlan, actor: Actor
) -> None:
    guardrail = guardrails.guardrail_create(
        actor=actor,
        flag=checkout,
        environment=production,
        name="checkout-5xx",
        query="sum(rate(http_errors_total[1m]))",
        threshold=0.05,
    )
    now = timezone.now()
    GuardrailCheck.objects.create(
        guardrail=guardrail, plan=plan, checked_at=now, health="ok", value=0.01
    )
    GuardrailCheck.objects.create(
        guardrail=guardrail,
        plan=plan,
        checked_at=now + timedelta(seconds=1),
        health="no_data",
        message="the query answered no number",
    )
    RolloutPlan.objects.filter(pk=plan.pk).update(blocked_reason="guardrail checkout-5xx: no data")
    html = page(admin_client, checkout)
    assert "Guardrail checks (2)" in html
    assert html.index("guardrail-no_data") < html.index("guardrail-ok")  # newest first
    assert "value 0.01" in html and "the query answered no number" in html
    assert "Next step held: guardrail checkout-5xx: no data" in html
