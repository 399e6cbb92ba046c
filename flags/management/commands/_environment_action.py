"""Shared argument handling of the kill and restore commands."""

from __future__ import annotations

import getpass
import socket
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, DataError, IntegrityError

from audit.recorder import Actor
from flags import emergency, propagation, selectors
from flags.models import Environment, Flag


class EnvironmentFlagCommand(BaseCommand):
    """A command acting on one flag in one environment, needing only the database."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flag", help="flag key, e.g. new-checkout")
        parser.add_argument(
            "--environment", "-e", required=True, help="environment key, e.g. production"
        )
        parser.add_argument(
            "--reason", "-r", required=True, help="why (recorded on the audit trail)"
        )
        parser.add_argument(
            "--emergency",
            action="store_true",
            help="apply through Redis without the database (done by itself when the database "
            "is unreachable); recorded in the database and the audit trail when it is back",
        )
        parser.add_argument(
            "--actor",
            default="",
            help="who is acting (default: the OS user and host, e.g. alice@ops-box)",
        )

    action = "kill"

    def handle(self, *args: Any, **options: Any) -> None:
        if options["emergency"]:
            self.emergency(options)
            return
        try:
            self.act(options)
        except DatabaseError as error:
            if isinstance(error, IntegrityError | DataError):
                raise
            self.stderr.write(
                self.style.ERROR(
                    f"The database is unreachable ({type(error).__name__}): applying the "
                    f"{self.action} through Redis instead."
                )
            )
            self.emergency(options)

    def act(self, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def actor(self, options: dict[str, Any]) -> Actor:
        return Actor.cli(options["actor"] or f"{getpass.getuser()}@{socket.gethostname()}")

    def emergency(self, options: dict[str, Any]) -> None:
        """The change through Redis while the database is out (flags.emergency)."""
        started_at = time.time()
        try:
            outcome = emergency.emergency_apply(
                action=self.action,
                flag=options["flag"],
                environment=options["environment"],
                reason=options["reason"],
                actor=self.actor(options),
            )
        except emergency.EmergencyRefused as refused:
            raise CommandError(refused.message) from None
        except emergency.EmergencyUnavailable as unavailable:
            raise CommandError(
                f"Nothing was changed: {unavailable}. With the database and Redis both down no "
                "server can change flags; see docs/runbook.md, 'Kill while the database is down'."
            ) from None
        if not outcome.changed:
            self.stdout.write(f"{options['flag']} already was so in {outcome.environment}.")
            return
        verb = "KILLED" if self.action == "kill" else "RESTORED"
        self.stdout.write(
            self.style.WARNING(
                f"EMERGENCY: {verb} {options['flag']} in {outcome.environment} through Redis "
                f"(version {outcome.version}). Its durable record is PENDING (journal entry "
                f"{outcome.entry.id if outcome.entry else '-'}): the web processes write it to "
                "the database and the audit trail as soon as the database is back."
            )
        )
        confirmation = propagation.change_confirm(
            outcome.environment, outcome.lineage, outcome.version, started_at=started_at
        )
        style = self.style.SUCCESS if confirmation.complete else self.style.ERROR
        self.stdout.write(style(f"Propagation: {confirmation.text()}."))

    def resolve(self, options: dict[str, Any]) -> tuple[Flag, Environment, Actor]:
        flag = selectors.flag_by_key(options["flag"])
        if flag is None:
            raise CommandError(
                f"No flag {options['flag']!r}. List them with: manage.py shell -c "
                "\"from flags.models import Flag; print(*Flag.objects.values_list('key', flat=True))\""
            )
        environment = selectors.environment_by_key(options["environment"])
        if environment is None:
            known = ", ".join(selectors.environment_keys())
            raise CommandError(f"No environment {options['environment']!r}; known: {known}")
        actor = self.actor(options)
        self.started_at = time.time()
        return flag, environment, actor

    def confirm(self, environment: Environment, version: int) -> None:
        """Say whether every live edge process serves the new version (waits at most a second)."""
        confirmation = propagation.change_confirm(
            environment.key, environment.lineage, version, started_at=self.started_at
        )
        style = self.style.SUCCESS if confirmation.complete else self.style.ERROR
        self.stdout.write(style(f"Propagation: {confirmation.text()}."))
