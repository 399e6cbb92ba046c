"""Trigger secrets never reach a log line, whatever the trigger answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.recorder import Actor
from flags import services
from flags.models import Environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(make_flag: Any, production: Environment, actor: Actor) -> str:
    _, raw = services.trigger_create(
        actor=actor, name="datadog", flag=make_flag("new-checkout"), environment=production
    )
    return raw


def test_trigger_answering_429__log_line_has_the_path_without_the_secret(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    statuses = {Client().post(f"/api/v1/triggers/{secret}/").status_code for _ in range(31)}
    assert 429 in statuses
    assert "/api/v1/triggers/<redacted>/" in caplog.text
    assert secret not in caplog.text


def test_trigger_answering_500__log_line_has_the_path_without_the_secret(
    secret: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "trigger_fire", broken)
    assert Client().post(f"/api/v1/triggers/{secret}/").status_code == 500
    assert "/api/v1/triggers/<redacted>/" in caplog.text
    assert secret not in caplog.text


def test_trigger_ids_in_admin_paths__are_not_secrets_and_stay_readable(
    caplog: pytest.LogCaptureFixture, db: None
) -> None:
    assert Client().post("/api/v1/triggers/12/revoke/").status_code in (401, 403)
    assert "/api/v1/triggers/12/revoke/" in caplog.text
