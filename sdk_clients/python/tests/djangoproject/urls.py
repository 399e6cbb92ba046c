from django.urls import path

from djangoproject import views

urlpatterns = [
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/legacy/", views.legacy_checkout, name="legacy-checkout"),
    path("checkout/new/", views.new_checkout_only, name="new-checkout-only"),
    path("checkout/gated/", views.new_checkout_or_404, name="new-checkout-or-404"),
    path("maintenance-off/", views.unless_maintenance, name="unless-maintenance"),
    path("staff/", views.StaffToolsView.as_view(), name="staff-tools"),
    path("page/", views.page, name="page"),
    path("flags/", views.request_flags, name="request-flags"),
    path("async/checkout/", views.async_checkout),
    path("async/checkout/new/", views.async_new_checkout_only),
    path("async/staff/", views.AsyncStaffToolsView.as_view()),
    path("async/flags/", views.async_request_flags),
    path("async/page/", views.async_page),
    path("async/sync-call/", views.async_sync_call),
]
