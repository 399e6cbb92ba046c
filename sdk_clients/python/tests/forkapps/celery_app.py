"""A Celery app for a prefork worker: the client is created at import in the parent worker,
before the pool forks its children; each child must keep its flags fresh by itself."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from flagsvc_sdk import FlagsvcClient

BROKER = os.environ["CELERY_TEST_DIR"]

app = Celery("flagsvc_sdk_tests")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options={
        "data_folder_in": f"{BROKER}/queue",
        "data_folder_out": f"{BROKER}/queue",
        "processed_folder": f"{BROKER}/processed",
        "control_folder": f"{BROKER}/control",
        "store_processed": False,
        "polling_interval": 0.05,
    },
    result_backend=f"file://{BROKER}/results",
    task_default_queue="flagsvc-sdk-tests",
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)

client = FlagsvcClient(os.environ["FLAGSVC_URL"], os.environ["FLAGSVC_SDK_KEY"], timeout=5)
client.wait_for_ready(10)
PARENT_PID = os.getpid()


@app.task
def check(key: str) -> dict[str, Any]:
    thread = client._thread
    return {
        "pid": os.getpid(),
        "parent": PARENT_PID,
        "enabled": client.is_enabled(key, {"targetingKey": "user-1"}),
        "version": client.version,
        "updater": bool(thread is not None and thread.is_alive()),
    }
