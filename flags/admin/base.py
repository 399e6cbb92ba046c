"""What every flagsvc ModelAdmin shares: service refusals as messages, and the permission checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from flags.errors import ServiceError, ValidationFailed

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


@dataclass(frozen=True)
class Refusal:
    """A service's validation refusal during an admin save, and the inline row it concerns
    (None: the page's main form)."""

    error: ValidationFailed
    row_id: int | None = None


def refusal_of(request: HttpRequest) -> Refusal | None:
    """The refusal the page is being shown again for, if any."""
    return getattr(request, "_flagsvc_refusal", None)


def refuse_row(request: HttpRequest, row_id: int) -> None:
    """Mark that the refusal being raised concerns the inline row ``row_id``."""
    request._flagsvc_refused_row = row_id  # type: ignore[attr-defined]


class ServiceErrorsAsMessages(admin.ModelAdmin):
    """A service refusal during save rolls the whole admin save back. A validation refusal
    naming fields shows the page again with each problem on its field (the services are
    the one validator); any other refusal is a message, and back to the page."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationFailed as error:
            if error.fields and refusal_of(request) is None:
                row_id = getattr(request, "_flagsvc_refused_row", None)
                request._flagsvc_refusal = Refusal(error, row_id)  # type: ignore[attr-defined]
                return self.changeform_view(request, object_id, form_url, extra_context)
            return self._refused(request, error)
        except ServiceError as error:
            return self._refused(request, error)

    @staticmethod
    def _refused(request: HttpRequest, error: ServiceError) -> HttpResponse:
        messages.error(request, f"Nothing was saved: {error.message}")
        return HttpResponseRedirect(request.get_full_path())

    def form_attributes(self, request: HttpRequest) -> dict[str, Any]:
        """Attributes the page's form class gets for this request."""
        refusal = refusal_of(request)
        if refusal is not None and refusal.row_id is None:
            return {"service_refusal": refusal.error}
        return {}

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        attributes = self.form_attributes(request)
        return type(form.__name__, (form,), attributes) if attributes else form
