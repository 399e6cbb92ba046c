"""The admin login's lockout answer: django-axes decides who is locked out, this says so clearly.

Axes (settings: AXES_*) counts failed logins per client address across usernames
and per username across addresses; once either reaches the limit, every login
from that address or for that username is refused for the cool-off, with this page
(HTTP 429 and Retry-After).
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else 0
    response = render(
        request,
        "admin/login_locked.html",
        {
            "failure_limit": get_failure_limit(request, credentials),
            "cooloff_minutes": math.ceil(seconds / 60),
            "until": timezone.now() + cool_off if cool_off else None,
        },
        status=429,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
