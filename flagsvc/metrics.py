"""Prometheus metrics shared by the SDK edge and Django, and the /metrics exposition.

With several worker processes set PROMETHEUS_MULTIPROC_DIR (an empty, writable
folder) so /metrics adds up every process; without it each process reports itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "flagsvc_http_requests_total",
    "HTTP requests answered, by endpoint and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "flagsvc_http_request_duration_seconds",
    "Time to answer, by endpoint.",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SNAPSHOT_VERSION = Gauge(
    "flagsvc_snapshot_version",
    "Snapshot version this process serves, by environment.",
    ["environment"],
    multiprocess_mode="max",
)
OPEN_STREAMS = Gauge(
    "flagsvc_open_streams",
    "Open SSE streams, by environment.",
    ["environment"],
    multiprocess_mode="livesum",
)
DEPENDENCY_STATE = Gauge(
    "flagsvc_dependency_state",
    "1 for the state (ok, degraded, down) of each dependency at this process's last /readyz probe.",
    ["dependency", "state"],
    multiprocess_mode="livemax",
)
DEPENDENCY_STATES = ("ok", "degraded", "down")
STREAM_REFUSALS = Counter(
    "flagsvc_stream_refusals_total",
    "SSE streams refused (429) because a cap was reached, by cap (per_key, per_process).",
    ["cap"],
)
KEY_LOOKUPS = Counter(
    "flagsvc_edge_key_lookups_total",
    "Keys missing from the edge's token map, by outcome: looked up in the database, "
    "refused from the negative cache, or throttled before any lookup.",
    ["outcome"],
)
PUBLISHES = Counter(
    "flagsvc_snapshot_publishes_total", "Snapshots installed by this process.", ["environment"]
)


class Observer:
    """A pre-bound counter and histogram for one endpoint: the hot path does two cheap calls."""

    def __init__(self, endpoint: str, method: str = "GET") -> None:
        self.endpoint = endpoint
        self.method = method
        self._histogram = LATENCY.labels(endpoint)
        self._counters: dict[int, Any] = {}

    def __call__(self, status: int, started: float) -> None:
        counter = self._counters.get(status)
        if counter is None:
            counter = self._counters[status] = REQUESTS.labels(
                self.endpoint, self.method, str(status)
            )
        counter.inc()
        self._histogram.observe(time.perf_counter() - started)


def dependency_state(dependency: str, state: str) -> None:
    for candidate in DEPENDENCY_STATES:
        DEPENDENCY_STATE.labels(dependency, candidate).set(1 if candidate == state else 0)


def exposition() -> tuple[bytes, str]:
    if MULTIPROCESS:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


@sync_and_async_middleware
def django_metrics_middleware(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Counts and times every Django response by its URL pattern (not the raw path).

    Works in both modes so that Django under ASGI never switches threads for it.
    """

    def record(request: Any, response: Any, started: float) -> None:
        match = getattr(request, "resolver_match", None)
        endpoint = (
            f"django:{match.route}" if match is not None and match.route else "django:unmatched"
        )
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(time.perf_counter() - started)

    if iscoroutinefunction(get_response):

        async def async_middleware(request: Any) -> Any:
            started = time.perf_counter()
            response = await get_response(request)
            record(request, response, started)
            return response

        return async_middleware

    def middleware(request: Any) -> Any:
        started = time.perf_counter()
        response = get_response(request)
        record(request, response, started)
        return response

    return middleware
