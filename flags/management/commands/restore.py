"""`manage.py restore FLAG -e ENV -r REASON`: lift a kill; the flag serves what it did before."""

from typing import Any

from django.core.management.base import CommandError

from flags import services
from flags.errors import ServiceError
from flags.management.commands._environment_action import EnvironmentFlagCommand


class Command(EnvironmentFlagCommand):
    help = "Restore a killed flag in an environment: its rules, targets and rollout apply again."

    action = "restore"

    def act(self, options: dict[str, Any]) -> None:
        flag, environment, actor = self.resolve(options)
        try:
            outcome = services.flag_restore(
                actor=actor, flag=flag, environment=environment, reason=options["reason"]
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        if not outcome.changed:
            self.stdout.write(f"{flag.key} is not killed in {environment.key}; nothing written.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"RESTORED {flag.key} in {environment.key}: environment version {outcome.environment_version}"
            )
        )
        self.confirm(environment, outcome.environment_version)
