"""flagsvc — feature flags and kill switches; the Django project package."""

from flagsvc.celery import app as celery_app

__all__ = ["celery_app"]
