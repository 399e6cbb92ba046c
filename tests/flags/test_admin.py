"""The Django admin: list columns and filters, edits and actions through the audited services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag, FlagState

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/flags/flag/"


def _change_form_data(flag: Flag, **state_overrides: dict[str, Any]) -> dict[str, Any]:
    states = list(
        FlagState.objects.filter(flag=flag)
        .select_related("environment")
        .order_by("environment__sort_order", "environment_id")
    )
    data: dict[str, Any] = {
        "name": flag.name,
        "description": flag.description,
        "variants": json.dumps(flag.variants),
        "off_variant": flag.off_variant,
        "tag_names": ", ".join(t.name for t in flag.tags.all()),
        "owner": flag.owner,
        "reason": "admin edit",
        "states-TOTAL_FORMS": len(states),
        "states-INITIAL_FORMS": len(states),
        "states-MIN_NUM_FORMS": 0,
        "states-MAX_NUM_FORMS": 1000,
    }
    if flag.client_visible:
        data["client_visible"] = "on"
    for i, state in enumerate(states):
        values = {**state.definition(), **state_overrides.get(state.environment.key, {})}
        prefix = f"states-{i}-"
        data[prefix + "id"] = state.pk
        data[prefix + "flag"] = flag.pk
        data[prefix + "expected_version"] = state.version
        if values["enabled"]:
            data[prefix + "enabled"] = "on"
        for field in ("targets", "rules", "default_serve", "prerequisites"):
            value = values[field]
            data[prefix + field] = value if isinstance(value, str) else json.dumps(value)
    return data


def test_changelist__shows_state_per_environment_and_kills_in_red(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    rollout = make_flag("new-checkout", tags=["payments"], owner="payments-team")
    services.flag_state_update(
        actor=actor,
        flag=rollout,
        environment=production,
        enabled=True,
        default_serve={
            "split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
        },
    )
    killed = make_flag("provider-b", tags=["kill-switch"])
    services.flag_kill(
        actor=Actor.cli("alice"),
        flag=killed,
        environment=production,
        reason="provider B timing out",
    )
    page = admin_client.get(CHANGELIST).content.decode()
    for text in (
        "new-checkout",
        "payments-team",
        "payments",
        "25%",
        "Production",
        "Staging",
        "flag-killed",
        "by alice",
        "provider B timing out",
    ):
        assert text in page


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("tag=payments", "new-checkout", "provider-b"),
        ("env_state=production:killed", "provider-b", "new-checkout"),
        ("env_state=production:rollout", "new-checkout", "provider-b"),
        ("killed=no", "new-checkout", "provider-b"),
        ("q=provider", "provider-b", "new-checkout"),
    ],
)
def test_changelist__filters(
    admin_client: Client,
    make_flag: Callable[..., Flag],
    production: Environment,
    actor: Actor,
    query: str,
    shown: str,
    hidden: str,
) -> None:
    rollout = make_flag("new-checkout", tags=["payments"])
    services.flag_state_update(
        actor=actor,
        flag=rollout,
        environment=production,
        enabled=True,
        default_serve={
            "split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]
        },
    )
    services.flag_kill(
        actor=actor, flag=make_flag("provider-b"), environment=production, reason="r"
    )
    page = admin_client.get(f"{CHANGELIST}?{query}").content.decode()
    assert f">{shown}<" in page and f">{hidden}<" not in page


def test_changelist__archived_flags_hidden_unless_asked(
    admin_client: Client, make_flag: Callable[..., Flag], actor: Actor
) -> None:
    services.flag_archive(actor=actor, flag=make_flag("old-flag"))
    make_flag("live-flag")
    assert ">old-flag<" not in admin_client.get(CHANGELIST).content.decode()
    assert ">old-flag<" in admin_client.get(f"{CHANGELIST}?archived=yes").content.decode()


def test_add_flag__goes_through_the_service_as_the_staff_user(
    admin_client: Client, environments: dict[str, Environment]
) -> None:
    response = admin_client.post(
        reverse("admin:flags_flag_add"),
        {
            "key": "search-ranking",
            "type": "string",
            "variants": '{"classic": "classic", "semantic": "semantic"}',
            "off_variant": "classic",
            "tag_names": "search, Experiment",
            "owner": "search-team",
            "reason": "new experiment",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    flag = Flag.objects.get(key="search-ranking")
    assert sorted(t.name for t in flag.tags.all()) == ["experiment", "search"]
    assert flag.states.count() == 3
    event = AuditEvent.objects.get(action="flag.create")
    assert (event.actor, event.actor_kind, event.reason) == ("admin", "user", "new experiment")


def test_add_flag__bad_variants__shows_the_error_and_creates_nothing(
    admin_client: Client, environments: dict[str, Environment]
) -> None:
    response = admin_client.post(
        reverse("admin:flags_flag_add"),
        {
            "key": "color",
            "type": "string",
            "variants": '{"red": 1}',
            "off_variant": "red",
        },
    )
    assert response.status_code == 200
    assert "a string flag&#x27;s variants are strings" in response.content.decode()
    assert not Flag.objects.filter(key="color").exists()


def test_edit_state_inline__valid__audited_as_the_staff_user(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    rules = [
        {
            "id": "de",
            "conditions": [{"attribute": "country", "operator": "equals", "value": "DE"}],
            "serve": {"variant": "on"},
        }
    ]
    data = _change_form_data(flag, production={"enabled": True, "rules": rules})
    response = admin_client.post(reverse("admin:flags_flag_change", args=[flag.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    state = FlagState.objects.get(flag=flag, environment=production)
    assert state.enabled and state.rules == rules
    event = AuditEvent.objects.get(action="flag_state.update")
    assert (event.actor, event.environment_key, event.reason) == (
        "admin",
        "production",
        "admin edit",
    )


def test_edit_state_inline__bad_regex__shown_on_the_rules_field_and_nothing_saved(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    rules = [
        {
            "conditions": [{"attribute": "email", "operator": "matches", "value": "(a)\\1"}],
            "serve": {"variant": "on"},
        }
    ]
    data = _change_form_data(flag, production={"enabled": True, "rules": rules})
    response = admin_client.post(reverse("admin:flags_flag_change", args=[flag.pk]), data)
    assert response.status_code == 200
    assert (
        "rules[0].conditions[0].value: the pattern uses a backreference"
        in response.content.decode()
    )
    assert not FlagState.objects.get(flag=flag, environment=production).enabled
    assert not AuditEvent.objects.filter(action="flag_state.update").exists()


def test_edit_state_inline__stale_page__refused(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    data = _change_form_data(flag, production={"enabled": True})
    services.flag_state_update(actor=actor, flag=flag, environment=production, rules=[])
    services.flag_state_update(
        actor=actor, flag=flag, environment=production, targets=[{"variant": "on", "values": ["u"]}]
    )
    response = admin_client.post(reverse("admin:flags_flag_change", args=[flag.pk]), data)
    assert "Someone changed this environment" in response.content.decode()


def test_kill_action_from_the_list__asks_for_environment_and_reason_then_kills(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flags = [make_flag("a"), make_flag("b")]
    selected = {"action": "kill_action", "_selected_action": [f.pk for f in flags]}
    page = admin_client.post(CHANGELIST, selected)
    assert page.status_code == 200 and "Yes, do it now" in page.content.decode()
    response = admin_client.post(
        CHANGELIST,
        {**selected, "environment": "production", "reason": "cascade failure", "confirm": "on"},
    )
    assert response.status_code == 302
    assert FlagState.objects.filter(environment=production, killed_at__isnull=False).count() == 2
    assert set(AuditEvent.objects.filter(action="flag.kill").values_list("actor", flat=True)) == {
        "admin"
    }


def test_kill_and_restore_buttons_on_the_flag_page(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    page = admin_client.get(reverse("admin:flags_flag_change", args=[flag.pk])).content.decode()
    assert "Kill in production" in page
    url = reverse("admin:flags_flag_environment_action", args=[flag.pk, "kill"])
    assert "Yes, do it now" in admin_client.get(f"{url}?environment=production").content.decode()
    admin_client.post(url, {"environment": "production", "reason": "bad deploy", "confirm": "on"})
    state = FlagState.objects.get(flag=flag, environment=production)
    assert state.killed and state.kill_reason == "bad deploy" and state.killed_by == "admin"
    assert (
        "Restore in production"
        in admin_client.get(reverse("admin:flags_flag_change", args=[flag.pk])).content.decode()
    )
    admin_client.post(
        reverse("admin:flags_flag_environment_action", args=[flag.pk, "restore"]),
        {"environment": "production", "reason": "fixed", "confirm": "on"},
    )
    assert not FlagState.objects.get(flag=flag, environment=production).killed


def test_kill_without_confirmation_or_reason__changes_nothing(
    admin_client: Client, make_flag: Callable[..., Flag], production: Environment
) -> None:
    flag = make_flag()
    url = reverse("admin:flags_flag_environment_action", args=[flag.pk, "kill"])
    response = admin_client.post(url, {"environment": "production", "reason": "", "confirm": "on"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not FlagState.objects.get(flag=flag, environment=production).killed


def test_enable_action__enables_in_the_chosen_environment(
    admin_client: Client, make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    flag = make_flag()
    admin_client.post(
        CHANGELIST,
        {
            "action": "enable_action",
            "_selected_action": [flag.pk],
            "environment": "staging",
            "reason": "try it",
            "confirm": "on",
        },
    )
    assert {s.environment.key: s.enabled for s in flag.states.all()} == {
        "development": False,
        "staging": True,
        "production": False,
    }


def test_audit_admin__read_only(admin_client: Client, make_flag: Callable[..., Flag]) -> None:
    make_flag()
    event = AuditEvent.objects.get(action="flag.create")
    assert admin_client.get("/admin/audit/auditevent/?action=flag.create").status_code == 200
    detail = admin_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert detail.status_code == 200 and "new-checkout" in detail.content.decode()
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert admin_client.post(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_environment_admin__create_goes_through_the_service(
    admin_client: Client, make_flag: Callable[..., Flag]
) -> None:
    make_flag()
    response = admin_client.post(
        "/admin/flags/environment/add/", {"key": "qa", "name": "QA", "description": ""}
    )
    assert response.status_code == 302
    assert FlagState.objects.filter(environment__key="qa").count() == 1
    assert AuditEvent.objects.filter(
        action="environment.create", target_key="qa", actor="admin"
    ).exists()


def test_edit_state_inline__refusal_shown_on_the_refused_environment_only(
    admin_client: Client, make_flag: Callable[..., Flag], environments: dict[str, Environment]
) -> None:
    # Given a valid change in one environment and an unknown variant in another
    flag = make_flag()
    bad_serve = {"variant": "purple"}
    data = _change_form_data(
        flag, staging={"enabled": True}, production={"default_serve": bad_serve}
    )
    response = admin_client.post(reverse("admin:flags_flag_change", args=[flag.pk]), data)
    # Then the page comes back with the service's problem on production's form, not staging's
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    errors = {form.instance.environment.key: form.errors for form in formset.forms}
    assert "default_serve" in errors["production"] and "purple" in str(errors["production"])
    assert not errors["staging"]
    # And nothing was written anywhere
    assert not FlagState.objects.get(flag=flag, environment=environments["staging"]).enabled
    assert not AuditEvent.objects.filter(action="flag_state.update").exists()


def test_add_segment__bad_rule__shown_on_the_rules_field_and_nothing_created(
    admin_client: Client, production: Environment
) -> None:
    rules = [{"conditions": [{"attribute": "email", "operator": "sounds_like", "value": "x"}]}]
    response = admin_client.post(
        "/admin/flags/segment/add/",
        {
            "environment": production.pk,
            "key": "staff",
            "name": "Staff",
            "included": "[]",
            "excluded": "[]",
            "rules": json.dumps(rules),
        },
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "rules" in form.errors and "sounds_like" in str(form.errors["rules"])
    assert not AuditEvent.objects.filter(action="segment.create").exists()
