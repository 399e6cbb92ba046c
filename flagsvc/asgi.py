"""The one ASGI application: a lean Starlette front for static files, Django behind it."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")

from django.conf import settings
from django.core.asgi import get_asgi_application
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

django_application = get_asgi_application()


def build_application() -> Starlette:
    routes = [
        Mount(
            "/" + settings.STATIC_URL.strip("/"),
            app=StaticFiles(directory=settings.STATIC_ROOT, check_dir=False),
            name="static",
        ),
        Mount("/", app=django_application),  # type: ignore[arg-type]
    ]
    return Starlette(routes=routes)


application = build_application()
