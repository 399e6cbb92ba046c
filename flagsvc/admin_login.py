"""Throttled admin login: repeated failures for one account from one address are refused for a while."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def _key(request: Any, username: str) -> str:
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    ident = hashlib.sha256(f"{address}|{username.lower()}".encode()).hexdigest()[:32]
    return f"flagsvc:admin-login-failures:{ident}"


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """After 5 failed logins for a username from one address, refuse it for 15 minutes."""

    def clean(self) -> dict[str, Any]:
        username = self.data.get("username", "")
        key = _key(self.request, username)
        try:
            failures = cache.get(key, 0)
        except Exception:  # no cache, no throttle: never lock everyone out
            logger.warning("login throttle cache unavailable", exc_info=True)
            failures = 0
        if failures >= MAX_FAILURES:
            raise forms.ValidationError(
                "Too many failed logins for this account from your address. Wait 15 minutes, "
                "or ask another admin to reset the password.",
                code="throttled",
            )
        try:
            return super().clean()
        except forms.ValidationError:
            try:
                if not cache.add(key, 1, WINDOW_SECONDS):
                    cache.incr(key)
            except Exception:
                logger.warning("login throttle cache unavailable", exc_info=True)
            raise
