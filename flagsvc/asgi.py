"""The one ASGI application: the SDK edge (Starlette) in front, Django's ASGI app behind it."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from flags.edge.app import build_application  # noqa: E402

application = build_application(django_application)
