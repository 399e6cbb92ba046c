"""URL map of the Django side (the SDK edge in flagsvc/asgi.py answers its own paths first)."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.generic import RedirectView


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


admin.site.site_header = "flagsvc"
admin.site.site_title = "flagsvc admin"
admin.site.index_title = "Flags, environments and the audit trail"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
