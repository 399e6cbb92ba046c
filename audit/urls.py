"""Audit API routes, mounted at /api/v1/audit/ by flagsvc/urls.py."""

from django.urls import path

from audit.api import AuditEventListView

urlpatterns = [
    path("", AuditEventListView.as_view(), name="api-audit"),
]
