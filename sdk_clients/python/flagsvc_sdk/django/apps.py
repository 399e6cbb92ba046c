"""``INSTALLED_APPS = [..., "flagsvc_sdk.django"]``: template tags, the bootstrap command."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "FLAGSVC":
        from flagsvc_sdk.django.conf import reset_client

        reset_client()


class FlagsvcConfig(AppConfig):
    name = "flagsvc_sdk.django"
    label = "flagsvc"
    verbose_name = "flagsvc feature flags"

    def ready(self) -> None:
        setting_changed.connect(_settings_changed, dispatch_uid="flagsvc-settings-changed")
