"""Django app config for the flag domain."""

from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"

    def ready(self) -> None:
        # Rollout plans follow kills, edits and archives through the services' hooks.
        from flags.rollouts import hooks  # noqa: F401

        # Every audited change becomes webhook deliveries (audit.recorder.event_recorded).
        from flags.webhooks import queue  # noqa: F401
