"""A WSGI app for gunicorn --preload: the client is created at import, in the master, before
the workers fork; each worker must end up with an updater of its own."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from flagsvc_sdk import FlagsvcClient

client = FlagsvcClient(os.environ["FLAGSVC_URL"], os.environ["FLAGSVC_SDK_KEY"], timeout=5)
client.wait_for_ready(10)
MASTER_PID = os.getpid()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    key = environ.get("PATH_INFO", "/").strip("/") or "payments.provider-b"
    thread = client._thread
    body = json.dumps(
        {
            "pid": os.getpid(),
            "master": MASTER_PID,
            "enabled": client.is_enabled(key, {"targetingKey": "user-1"}),
            "version": client.version,
            "updater": thread is not None and thread.is_alive() and thread.name,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Connection", "close")])
    return [body]
