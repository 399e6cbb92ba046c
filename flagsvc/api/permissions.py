"""Permission classes narrowed to one model, built on the project's default API permission."""

from __future__ import annotations

from typing import Any, cast

from django.db import models
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings


def codename_pattern(action: str) -> list[str]:
    """DRF's perms_map entry for one action, e.g. ``kill`` -> ``%(app_label)s.kill_%(model_name)s``."""
    return [f"%(app_label)s.{action}_%(model_name)s"]


def model_permission_class(
    model: type[models.Model],
    *,
    base: type[BasePermission] | None = None,
    attributes: dict[str, Any] | None = None,
    **actions: str,
) -> type[BasePermission]:
    """A subclass of ``base`` (default: REST_FRAMEWORK's first DEFAULT_PERMISSION_CLASSES)
    for an endpoint managing ``model``.

    ``actions`` maps a method to another codename action (``POST="kill"`` needs
    ``<app>.kill_<model>``); the other methods keep ``base.perms_map``.
    """
    parent: type[BasePermission] = (
        base if base is not None else cast(Any, api_settings).DEFAULT_PERMISSION_CLASSES[0]
    )
    perms_map = {
        **getattr(parent, "perms_map", {}),
        **{method: codename_pattern(action) for method, action in actions.items()},
    }
    suffix = "".join(f"_{method}_{action}" for method, action in actions.items())
    return type(
        f"{model.__name__}Permission{suffix}",
        (parent,),
        {"model": model, "perms_map": perms_map, **(attributes or {})},
    )
