"""flagsvc for Django: ``INSTALLED_APPS += ["flagsvc_sdk.django"]`` and one ``FLAGSVC`` dict.

    from flagsvc_sdk.django import flag_is_active, flag_required, FlagRequiredMixin
    from flagsvc_sdk.django.testing import override_flag, override_value

Middleware ``flagsvc_sdk.django.middleware.FlagsvcMiddleware`` gives ``request.flags``;
``{% load flagsvc %}`` gives ``{% flag %}`` and ``{% flag_value %}``; ``manage.py
flagsvc_bootstrap <file>`` writes the current snapshot for ``FLAGSVC["BOOTSTRAP"]``.
"""

from __future__ import annotations

from flagsvc_sdk.django.conf import get_client, reset_client
from flagsvc_sdk.django.context import (
    RequestFlags,
    aflag_is_active,
    aflag_value,
    flag_is_active,
    flag_value,
    request_context,
)
from flagsvc_sdk.django.decorators import FlagRequiredMixin, flag_required

__all__ = [
    "FlagRequiredMixin",
    "RequestFlags",
    "aflag_is_active",
    "aflag_value",
    "flag_is_active",
    "flag_required",
    "flag_value",
    "get_client",
    "request_context",
    "reset_client",
]
