"""WSGI entry point (the ASGI one in asgi.py is what `make run` and production serve)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")

application = get_wsgi_application()
