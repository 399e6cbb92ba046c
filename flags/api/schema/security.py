"""The OpenAPI security schemes: admin tokens, SDK and kill keys, and the admin's session."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

_BEARER = "Send `Authorization: Bearer <token>`."
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "Admin token (`fsv_admin_...`): the whole management API. " + _BEARER,
    },
    "ServerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Server SDK key (`fsv_server_...`), bound to one environment: "
        "snapshot, stream and OFREP. " + _BEARER,
    },
    "ClientKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Client SDK key (`fsv_client_...`), bound to one environment: OFREP "
        "evaluation of client-visible flags only (and the stream). " + _BEARER,
    },
    "KillKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Kill key (`fsv_kill_...`), optionally bound to one environment: kill, "
        "restore and the list of active kills. " + _BEARER,
    },
    "ServerKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A server SDK key in the X-API-Key header (OFREP and the stream).",
    },
    "ClientKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A client SDK key in the X-API-Key header (OFREP and the stream).",
    },
    "SdkKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "A server or client SDK key as ?api_key= (the stream only, for "
        "browsers' EventSource, which cannot send headers).",
    },
}


class AdminTokenScheme(OpenApiAuthenticationExtension):
    target_class = "flags.api.auth.BearerTokenAuthentication"
    name = "AdminToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return SECURITY_SCHEMES["AdminToken"]


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "flags.api.auth.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        from django.conf import settings

        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A logged-in staff user's Django admin session; acts as an admin "
            "token. Unsafe methods also need the CSRF token in the X-CSRFToken header.",
        }
