"""What every flagsvc ModelAdmin shares: service refusals as messages, and the permission checks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from flags.errors import ServiceError

# The permission each environment action needs, as on the API (flags/api/permissions.py).
ACTION_PERMISSIONS = {
    "kill": "flags.kill_flag",
    "restore": "flags.restore_flag",
    "enable": "flags.change_flagstate",
    "disable": "flags.change_flagstate",
}
ISSUE_ADMIN_TOKEN = "flags.issue_admin_token"


def lacks_permission(request: HttpRequest, permission: str) -> str | None:
    """A message naming ``permission`` when the user lacks it, else None."""
    if request.user.has_perm(permission):
        return None
    return (
        f"You lack the permission {permission}; ask an administrator to grant it "
        "(admin → Users → permissions)."
    )


def admin_page(
    model_admin: admin.ModelAdmin, request: HttpRequest, template: str, title: str, **context: Any
) -> TemplateResponse:
    """One of our own pages inside the admin (its header, breadcrumbs and ``opts``)."""
    page = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        **context,
    }
    return TemplateResponse(request, template, page)


class ServiceErrorsAsMessages(admin.ModelAdmin):
    """A service refusal during save rolls the whole admin save back; say why and go back."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as error:
            messages.error(request, f"Nothing was saved: {error.message}")
            return HttpResponseRedirect(request.get_full_path())
