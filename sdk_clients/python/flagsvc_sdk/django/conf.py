"""The ``FLAGSVC`` settings dict and the one client per process, created on first use.

FLAGSVC = {
    "URL": "https://flags.example.com",
    "SDK_KEY": env("FLAGSVC_SDK_KEY"),
    "BOOTSTRAP": BASE_DIR / "flagsvc-bootstrap.json",
    "DEFAULTS": {"new-checkout": False},
}
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from flagsvc_sdk.client import FlagsvcClient

logger = logging.getLogger("flagsvc_sdk")

DEFAULTS: dict[str, Any] = {
    "URL": None,  # the flagsvc server; without URL and SDK_KEY the client runs offline
    "SDK_KEY": None,  # a server SDK key of one environment
    "BOOTSTRAP": None,  # snapshot file (see `manage.py flagsvc_bootstrap`) served until fresh
    "DEFAULTS": {},  # flag key -> value for flags no snapshot has
    "POLL_INTERVAL": 30.0,
    "STREAM": True,
    "TIMEOUT": 5.0,  # per request
    "READY_TIMEOUT": 2.0,  # the first evaluation waits at most this long for the server
    "OFFLINE": False,  # bootstrap and defaults only (tests, local development)
    "CONTEXT": None,  # "dotted.path" or callable(request, context) adding attributes
    "USER_GROUPS": True,  # put the user's group names in the context (one query per request)
}

_lock = threading.Lock()
_client: FlagsvcClient | None = None


def flagsvc_settings() -> dict[str, Any]:
    configured = getattr(settings, "FLAGSVC", {}) or {}
    unknown = set(configured) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(
            f"FLAGSVC has unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}"
        )
    return {**DEFAULTS, **configured}


def get_client() -> FlagsvcClient:
    """This process's client, created (and its first snapshot awaited, bounded) on first use.

    >>> get_client().is_enabled("new-checkout", {"targetingKey": "42"})  # doctest: +SKIP
    """
    client = _client
    if client is not None:
        return client
    return _create()


def _create() -> FlagsvcClient:
    global _client
    with _lock:
        if _client is not None:
            return _client
        config = flagsvc_settings()
        offline = bool(config["OFFLINE"]) or not (config["URL"] and config["SDK_KEY"])
        if offline and not config["OFFLINE"]:
            logger.warning(
                "flagsvc: FLAGSVC has no URL or SDK_KEY; serving BOOTSTRAP and DEFAULTS only"
            )
        client = FlagsvcClient(
            config["URL"],
            config["SDK_KEY"],
            bootstrap=config["BOOTSTRAP"],
            defaults=config["DEFAULTS"],
            poll_interval=config["POLL_INTERVAL"],
            stream=config["STREAM"],
            timeout=config["TIMEOUT"],
            offline=offline,
        )
        if not offline:
            client.wait_for_ready(config["READY_TIMEOUT"])
        _client = client
        return client


def reset_client() -> None:
    """Close this process's client; the next use creates one from the current settings."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def context_hook() -> Callable[..., Any] | None:
    hook = flagsvc_settings()["CONTEXT"]
    if isinstance(hook, str):
        return import_string(hook)
    return hook
