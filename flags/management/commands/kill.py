"""`manage.py kill FLAG -e ENV -r REASON`: the kill switch from any host that reaches the database."""

from typing import Any

from django.core.management.base import CommandError

from flags import services
from flags.errors import ServiceError
from flags.management.commands._environment_action import EnvironmentFlagCommand


class Command(EnvironmentFlagCommand):
    help = "Kill a flag in an environment: every SDK serves its off variant. Rules stay intact."

    action = "kill"

    def act(self, options: dict[str, Any]) -> None:
        flag, environment, actor = self.resolve(options)
        try:
            outcome = services.flag_kill(
                actor=actor, flag=flag, environment=environment, reason=options["reason"]
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        state = outcome.state
        if not outcome.changed:
            self.stdout.write(
                f"{flag.key} was already KILLED in {environment.key} by {state.killed_by} at "
                f"{state.killed_at:%Y-%m-%d %H:%M:%S} UTC ({state.kill_reason}); nothing written. "
                f"Environment version {outcome.environment_version}."
            )
            self.confirm(environment, outcome.environment_version)
            return
        self.stdout.write(
            self.style.WARNING(
                f"KILLED {flag.key} in {environment.key}: environment version {outcome.environment_version}, "
                f"incident {state.kill_incident}"
            )
        )
        self.confirm(environment, outcome.environment_version)
