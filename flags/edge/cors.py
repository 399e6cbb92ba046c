"""Cross-origin access to the SDK paths (Starlette's CORSMiddleware), and to nothing else.

Browsers call the snapshot, stream and OFREP paths from any origin: a key in a header or
the query authorises them, never a cookie, so ``*`` is safe there. The admin and the
management API keep the same-origin policy.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

SDK_PATH_PREFIXES = ("/api/v1/sdk/", "/ofrep/")


class SdkCors:
    """Answers preflights and adds CORS headers on the SDK paths; other paths pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "If-None-Match",
                "Last-Event-ID",
            ],
            expose_headers=["ETag", "Retry-After"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SDK_PATH_PREFIXES):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
