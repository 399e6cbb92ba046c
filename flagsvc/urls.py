"""URL map of the Django side (the SDK edge, flags/edge/app.py, answers its own paths first)."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from flagsvc.api.errors import api_not_found


def django_ping(request: HttpRequest) -> JsonResponse:
    """Liveness of the Django side itself (through its middleware); /healthz is the edge's."""
    return JsonResponse({"status": "ok", "component": "django"})


admin.site.site_header = "flagsvc"
admin.site.site_title = "flagsvc admin"
admin.site.index_title = "Flags, environments and the audit trail"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz/django", django_ping, name="django-ping"),
    path("api/v1/audit/", include("audit.urls")),
    path("api/v1/", include("flags.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: any other path under /api/ answers the JSON error body, not an HTML 404.
    re_path(r"^api/", api_not_found),
]

handler500 = "flagsvc.api.errors.server_error"
