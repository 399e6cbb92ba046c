"""`manage.py issue_token`: a token on the last line of the output, audited, and working."""

from __future__ import annotations

import getpass
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent
from flags.models import ApiToken, Environment

pytestmark = pytest.mark.django_db


def test_issue_token__prints_the_token_alone_on_the_last_line_and_it_authenticates(
    environments: dict[str, Environment], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("issue_token", "--kind", "admin", "--name", "ci-bot", "--reason", "pipeline")
    lines = capsys.readouterr().out.strip().splitlines()
    raw = lines[-1]
    assert raw.startswith("fsv_admin_") and " " not in raw
    assert "ci-bot" in lines[0] and "not shown again" in lines[0]
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/environments/")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor == f"{getpass.getuser()}@{socket.gethostname()}"
    assert (event.actor_kind, event.reason) == ("cli", "pipeline")
    assert raw not in event.after_json


def test_issue_token__server_key_for_an_environment(
    environments: dict[str, Environment], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("issue_token", "--kind", "server", "-e", "production", "--name", "checkout")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get(name="checkout")
    assert raw.startswith("fsv_server_") and token.environment == environments["production"]


def test_issue_token__unknown_kind__command_error(db: None) -> None:
    with pytest.raises(CommandError, match="invalid choice: 'root'"):
        call_command("issue_token", "--kind", "root", "--name", "x")


def test_issue_token__server_key_without_environment__says_to_add_one(
    environments: dict[str, Environment],
) -> None:
    with pytest.raises(CommandError, match=r"--environment ENV \(known: development, staging"):
        call_command("issue_token", "--kind", "server", "--name", "checkout")
    assert not ApiToken.objects.exists()


def test_issue_token__unknown_environment__lists_the_known_ones(
    environments: dict[str, Environment],
) -> None:
    with pytest.raises(CommandError, match="No environment 'prod'; known: development"):
        call_command("issue_token", "--kind", "kill", "-e", "prod", "--name", "pager")


def test_issue_token__admin_with_environment__refused_by_the_service(
    environments: dict[str, Environment],
) -> None:
    with pytest.raises(CommandError, match="Admin tokens act on every environment"):
        call_command("issue_token", "--kind", "admin", "-e", "staging", "--name", "ops")
