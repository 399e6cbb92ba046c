"""A trigger fires whatever the alert body is; the body is context, kept only where it is safe."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services
from flags.api.alerts import ALERT_BODY_MAX_BYTES
from flags.models import Environment, Flag, FlagState

pytestmark = pytest.mark.django_db


@pytest.fixture
def trigger_url(make_flag: object, production: Environment, actor: Actor) -> str:
    flag: Flag = make_flag("new-checkout")  # type: ignore[operator]
    _, secret = services.trigger_create(
        actor=actor, name="datadog", flag=flag, environment=production
    )
    return f"/api/v1/triggers/{secret}/"


def _fire(url: str, body: bytes | str) -> dict[str, object]:
    data = body.encode() if isinstance(body, str) else body
    response = Client().post(url, data=data, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["killed"] is True
    assert FlagState.objects.get(flag__key="new-checkout", environment__key="production").killed
    return dict(response.json()["alert_body"])


def _kill_reason() -> str:
    return AuditEvent.objects.get(action="flag.kill").reason


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ('{"title": "checkout \\ud83d 5xx"}', "checkout  5xx"),
        ('{"title": "checkout\\u0000 5xx"}', "checkout 5xx"),
        ('{"title": "checkout \\ud83d\\ude80 5xx"}', "checkout \U0001f680 5xx"),
    ],
)
def test_fire__lone_surrogate_or_nul_in_the_note__kills_and_keeps_the_note_cleaned(
    trigger_url: str, body: str, kept: str
) -> None:
    alert_body = _fire(trigger_url, body)
    assert alert_body["used"] is True
    assert _kill_reason() == f"trigger 'datadog' fired: {kept}"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"title": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested too deeply"),
        (b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}', f"larger than {ALERT_BODY_MAX_BYTES}"),
        (b'{"title": "\xff\xfe"}', "not UTF-8"),
        ("<html>alert</html>", "not JSON"),
        ('["a list"]', "not a JSON object"),
    ],
)
def test_fire__unusable_body__kills_all_the_same_and_says_the_body_was_ignored(
    trigger_url: str, body: bytes | str, why: str
) -> None:
    alert_body = _fire(trigger_url, body)
    assert alert_body["used"] is False and why in str(alert_body["detail"])
    assert _kill_reason() == "trigger 'datadog' fired"


def test_fire__no_body__kills_and_says_there_was_none(trigger_url: str) -> None:
    assert _fire(trigger_url, b"") == {"used": False, "detail": "no body"}
