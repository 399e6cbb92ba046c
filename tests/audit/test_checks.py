"""`migrate` refuses a configuration that lacks the key of the chain's last event."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction

from audit.recorder import Actor, audit_record


@pytest.mark.django_db
def test_database_check__key_of_the_last_event_removed__names_it(
    actor: Actor, settings: Any
) -> None:
    settings.AUDIT_CHAIN_KEYS = {"a": "a" * 40}
    with transaction.atomic():
        audit_record(actor=actor, action="test.append", target_type="test", target_key="k")
    call_command("check", "--database", "default")

    settings.AUDIT_CHAIN_KEYS = {"b": "b" * 40}
    with pytest.raises(SystemCheckError, match=r"audit.E001.*lacks key 'a'"):
        call_command("check", "--database", "default")
