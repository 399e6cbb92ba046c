"""Django app config for the flag domain."""

from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"
