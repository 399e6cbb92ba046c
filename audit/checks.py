"""System check run by `migrate` (database checks): the key that signed the chain's last
event is configured, so the next change can prove the key rotation instead of failing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connections


@register(Tags.database)
def audit_chain_key_check(
    *,
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        with connection.cursor() as cursor:
            if "audit_auditchainhead" not in connection.introspection.table_names(cursor):
                continue
            columns = {
                column.name
                for column in connection.introspection.get_table_description(
                    cursor, "audit_auditchainhead"
                )
            }
            if "last_key_id" not in columns:
                continue  # before migration 0003: every event is legacy
            cursor.execute("SELECT last_key_id FROM audit_auditchainhead WHERE id = 1")
            row = cursor.fetchone()
        last_key_id = row[0] if row else ""
        if last_key_id and last_key_id not in settings.AUDIT_CHAIN_KEYS:
            errors.append(
                Error(
                    f"AUDIT_CHAIN_KEYS lacks key {last_key_id!r}, which signed the last audit "
                    f"event in database {alias!r}: every change would be refused, because "
                    "the switch to the new signing key must be proven with it.",
                    hint=f"Keep {last_key_id}:<its secret> in AUDIT_CHAIN_KEYS after the "
                    "signing key (retired keys stay, to verify the events they signed).",
                    id="audit.E001",
                )
            )
    return errors
