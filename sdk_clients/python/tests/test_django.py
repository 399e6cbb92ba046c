"""The Django integration in the small test project (tests/djangoproject), offline from its
bootstrap file unless a test points FLAGSVC at a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from conftest import LiveFlagsvc, wait_until
from django.contrib.auth.models import Group, User
from django.core.exceptions import SynchronousOnlyOperation
from django.core.management import call_command
from django.test import AsyncClient, Client, RequestFactory
from djangoproject import views

from flagsvc_sdk.django import flag_is_active, get_client, request_context, reset_client
from flagsvc_sdk.django.context import RequestFlags
from flagsvc_sdk.django.testing import override_flag, override_value

pytestmark = pytest.mark.django_db
SDK_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_client() -> Any:
    reset_client()
    yield
    reset_client()


@pytest.fixture
def user_one() -> User:
    user = User.objects.create_user(username="ada", email="ada@example.com", password="x", id=1)
    user.groups.add(Group.objects.create(name="beta"))
    return user


@pytest.fixture
def user_two() -> User:
    return User.objects.create_user(username="bob", password="x", id=2, is_staff=True)


def test_checkout__flag_off_for_the_user__takes_the_legacy_path(
    client: Client, user_two: User
) -> None:
    client.force_login(user_two)
    assert client.get("/checkout/").content == b"legacy checkout"


def test_checkout__user_targeted__gets_the_new_checkout(client: Client, user_one: User) -> None:
    client.force_login(user_one)
    assert client.get("/checkout/").content == b"new checkout"


def test_flag_required__flag_off__redirects_to_the_named_url(client: Client) -> None:
    response = client.get("/checkout/new/")
    assert response.status_code == 302
    assert response["Location"] == "/checkout/legacy/"


def test_flag_required__flag_off_without_redirect__is_404(client: Client) -> None:
    assert client.get("/checkout/gated/").status_code == 404


def test_flag_required__flag_on__serves_the_view(client: Client, user_one: User) -> None:
    client.force_login(user_one)
    assert client.get("/checkout/new/").content == b"new checkout"
    assert client.get("/checkout/gated/").status_code == 200


def test_flag_required__negated_key__serves_only_while_the_flag_is_off(client: Client) -> None:
    assert client.get("/maintenance-off/").content == b"open"
    with override_flag("maintenance", active=True):
        assert client.get("/maintenance-off/").status_code == 404
    assert client.get("/maintenance-off/").status_code == 200


def test_mixin__staff_rule__staff_passes_others_get_404(
    client: Client, user_one: User, user_two: User
) -> None:
    client.force_login(user_one)
    assert client.get("/staff/").status_code == 404
    client.force_login(user_two)
    assert client.get("/staff/").content == b"staff tools"


def test_template_tags__flag_else_and_flag_value(client: Client, user_one: User) -> None:
    assert client.get("/page/").content.decode().strip() == "LEGACY|OPEN|100MB|5"
    client.force_login(user_one)
    with override_flag("maintenance"), override_value("upload.max-size-mb", 250):
        assert client.get("/page/").content.decode().strip() == "NEW|CLOSED|250MB|5"


def test_middleware__request_flags__context_from_user_groups_and_hook(
    client: Client, user_one: User
) -> None:
    client.force_login(user_one)
    answer = client.get("/flags/", HTTP_X_PLAN="pro").json()
    assert answer["new_checkout"] is True
    assert answer["context"] == {
        "targetingKey": "1",
        "is_staff": False,
        "is_superuser": False,
        "username": "ada",
        "email": "ada@example.com",
        "groups": ["beta"],
        "plan": "pro",
    }
    assert answer["max_mb"] == 100
    assert answer["pro"] is True
    assert answer["default"] is True  # FLAGSVC["DEFAULTS"] answers for a flag no snapshot has


def test_request_context__groups_rule_matches_group_members(
    rf: RequestFactory, user_one: User
) -> None:
    request = rf.get("/")
    request.user = user_one
    assert flag_is_active(request, "beta-group") is True
    request.user = User.objects.create_user(username="eve", password="x", id=3)
    assert flag_is_active(request, "beta-group") is False


def test_request_flags__one_request_sees_one_snapshot_while_the_client_changes(
    rf: RequestFactory, user_one: User
) -> None:
    request = rf.get("/")
    request.user = user_one
    flags = RequestFlags(request)
    assert flags.is_enabled("new-checkout") is True
    assert flags.is_enabled("maintenance") is False
    with override_flag("new-checkout", active=False), override_flag("maintenance"):
        # The same request keeps its snapshot; a new request sees the change.
        assert flags.is_enabled("new-checkout") is True
        assert flags.is_enabled("maintenance") is False
        assert RequestFlags(request).is_enabled("new-checkout") is False
        assert RequestFlags(request).is_enabled("maintenance") is True


def test_override_flag__as_decorator__applies_inside_and_restores_after(rf: RequestFactory) -> None:
    request = rf.get("/")

    @override_flag("new-checkout", active=True)
    def inside() -> bool:
        return flag_is_active(request, "new-checkout")

    assert flag_is_active(request, "new-checkout") is False
    assert inside() is True
    assert flag_is_active(request, "new-checkout") is False
    assert get_client().overrides == {}


def test_override__nested__restores_the_outer_value(rf: RequestFactory) -> None:
    request = rf.get("/")
    with override_flag("maintenance", active=True):
        with override_flag("maintenance", active=False):
            assert flag_is_active(request, "maintenance") is False
        assert flag_is_active(request, "maintenance") is True


def test_request_context__anonymous__has_no_targeting_key(rf: RequestFactory) -> None:
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/")
    request.user = AnonymousUser()
    assert request_context(request) == {"anonymous": True}


# Async views, through Django's ASGI handler (AsyncClient): the a-methods build the context in
# Django's sync thread, so request.user is read where the ORM allows it.


def async_get(path: str, user: User | None = None) -> Any:
    client = AsyncClient()
    if user is not None:
        client.force_login(user)
    return async_to_sync(client.get)(path)


def test_async_view__aflag_is_active_and_aflag_value__target_the_logged_in_user(
    user_one: User, user_two: User
) -> None:
    assert async_get("/async/checkout/", user_one).content == b"new checkout, up to 100 MB"
    assert async_get("/async/checkout/", user_two).content == b"legacy checkout"
    assert async_get("/async/checkout/").content == b"legacy checkout"


def test_async_view__flag_required__stays_async_and_redirects_or_serves(user_one: User) -> None:
    assert iscoroutinefunction(views.async_new_checkout_only)
    refused = async_get("/async/checkout/new/")
    assert refused.status_code == 302 and refused["Location"] == "/checkout/legacy/"
    assert async_get("/async/checkout/new/", user_one).content == b"new checkout"


def test_async_class_view__mixin__staff_passes_others_get_404(
    user_one: User, user_two: User
) -> None:
    assert async_get("/async/staff/", user_one).status_code == 404
    assert async_get("/async/staff/", user_two).content == b"staff tools"


def test_async_view__request_flags_a_methods__then_sync_ones_without_io(user_one: User) -> None:
    answer = async_get("/async/flags/", user_one).json()
    assert answer == {
        "new_checkout": True,
        "variant": "on",
        "reason": "TARGETING_MATCH",
        "max_mb": 100,
        "sync_after": True,
    }


def test_async_view__template_tags_after_aprepare(user_one: User) -> None:
    assert async_get("/async/page/").content.decode().strip() == "LEGACY|OPEN|100MB|5"
    assert async_get("/async/page/", user_one).content.decode().strip() == "NEW|OPEN|100MB|5"


def test_async_view__sync_evaluation_first__a_clear_error_naming_the_async_methods(
    user_one: User,
) -> None:
    with pytest.raises(SynchronousOnlyOperation, match=r"await request\.flags\.ais_enabled"):
        async_get("/async/sync-call/", user_one)


def test_sdk_package__imports_no_django_unless_the_integration_is_used() -> None:
    code = (
        "import sys, flagsvc_sdk, flagsvc_sdk.client, flagsvc_sdk.snapshot\n"
        "from flagsvc_sdk import FlagsvcClient\n"
        "FlagsvcClient(None, None, offline=True).is_enabled('x')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'openfeature'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bootstrap_command__writes_the_snapshot_a_client_can_start_from(tmp_path: Path) -> None:
    target = tmp_path / "bootstrap.json"
    call_command("flagsvc_bootstrap", str(target), "--allow-stale")
    document = json.loads(target.read_text())
    assert document["version"] == 7
    assert set(document["flags"]) >= {"new-checkout", "upload.max-size-mb"}


@pytest.mark.live
def test_live__bootstrap_command_and_lazy_client_against_a_real_server(
    live: LiveFlagsvc, settings: Any, tmp_path: Path, rf: RequestFactory
) -> None:
    settings.FLAGSVC = {"URL": live.url, "SDK_KEY": live.server_key, "READY_TIMEOUT": 10}
    target = tmp_path / "bootstrap.json"
    call_command("flagsvc_bootstrap", str(target))
    document = json.loads(target.read_text())
    assert document["environment"] == "production"
    assert "payments.provider-b" in document["flags"]
    request = rf.get("/")
    assert flag_is_active(request, "payments.provider-b") is True
    live.kill("payments.provider-b")
    try:
        wait_until(lambda: not flag_is_active(request, "payments.provider-b"), timeout=1.0)
    finally:
        live.restore("payments.provider-b")
    wait_until(lambda: flag_is_active(request, "payments.provider-b"), timeout=2.0)
