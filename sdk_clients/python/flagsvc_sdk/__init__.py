"""flagsvc's Python SDK: local flag evaluation with the server's own engine, kept fresh by
the SSE stream (polling as the fallback), safe under fork(); Django and OpenFeature
integrations in ``flagsvc_sdk.django`` and ``flagsvc_sdk.openfeature``.

    >>> from flagsvc_sdk import FlagsvcClient
    >>> client = FlagsvcClient("https://flags.example.com", "srv_...")  # doctest: +SKIP
    >>> client.is_enabled("new-checkout", {"targetingKey": "user-42"})  # doctest: +SKIP
    True

Importing ``flagsvc_sdk.engine`` alone (as the server does) loads only the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "PROVIDER_NOT_READY",
    "ErrorCode",
    "EvaluationDetails",
    "FlagsView",
    "FlagsvcClient",
    "Reason",
    "Snapshot",
    "SnapshotError",
    "Status",
]

if TYPE_CHECKING:
    from flagsvc_sdk.client import FlagsvcClient, Status
    from flagsvc_sdk.engine import ErrorCode, Reason
    from flagsvc_sdk.evaluation import PROVIDER_NOT_READY, EvaluationDetails, FlagsView
    from flagsvc_sdk.snapshot import Snapshot, SnapshotError

_LAZY = {
    "FlagsvcClient": "flagsvc_sdk.client",
    "Status": "flagsvc_sdk.client",
    "ErrorCode": "flagsvc_sdk.engine",
    "Reason": "flagsvc_sdk.engine",
    "PROVIDER_NOT_READY": "flagsvc_sdk.evaluation",
    "EvaluationDetails": "flagsvc_sdk.evaluation",
    "FlagsView": "flagsvc_sdk.evaluation",
    "Snapshot": "flagsvc_sdk.snapshot",
    "SnapshotError": "flagsvc_sdk.snapshot",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that the server's `import flagsvc_sdk.engine` does not load the HTTP client.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flagsvc_sdk' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
