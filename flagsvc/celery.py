"""The Celery application: broker from settings, tasks discovered in the apps."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")

app = Celery("flagsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _create_filesystem_broker_folders(**_: object) -> None:
    # kombu's filesystem transport (the server-less default) expects its folders to exist, in
    # every process that sends or receives (web, worker, beat, management commands).
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
