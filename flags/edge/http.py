"""The SDK edge's endpoints: snapshot (ETag/304, gzip), SSE stream, OFREP, health and metrics.

Steady state touches neither the ORM nor Django's middleware: every answer comes
from the process's EdgeState. Errors use the API's body for the SDK paths and
OFREP's own shapes for /ofrep/.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from typing import Any

import orjson
from django.conf import settings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flags.edge.ratelimit import RateLimiter
from flags.edge.readiness import readiness
from flags.edge.refusal_log import RefusalLog
from flags.edge.state import (
    EdgeState,
    EnvironmentSnapshot,
    KeyLookupThrottled,
    Subscriber,
    ofrep_success,
    run_evaluation,
    sse_event,
)
from flags.publish import json_bytes, json_loads
from flags.tokens import TokenPrincipal
from flagsvc import metrics
from flagsvc_sdk.engine import Reason

logger = logging.getLogger("flags.edge")

JSON = "application/json"
MAX_OFREP_BODY = 64 * 1024
# An evaluation whose work bound (condition checks, EnvironmentSnapshot.evaluation_work)
# times the context's size in bytes is at most this runs on the event loop; a bigger one
# runs in a thread. Measured worst case at the budget: under a millisecond.
INLINE_EVALUATION_BUDGET = 4_000
MAX_INLINE_BULK_FLAGS = 100
STREAM_RETRY_AFTER_SECONDS = 10

CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Authorization, X-API-Key, Content-Type, If-None-Match, Last-Event-ID",
    "access-control-expose-headers": "ETag, Retry-After",
    "access-control-max-age": "600",
}

# The process id tells which worker answered (useful behind flagsvc.serve's balancing).
_HEALTHZ = f'{{"status":"ok","pid":{os.getpid()}}}'.encode()
_observe_snapshot = metrics.Observer("edge:snapshot")
_observe_stream = metrics.Observer("edge:stream")
_observe_ofrep = metrics.Observer("edge:ofrep_flag", "POST")
_observe_bulk = metrics.Observer("edge:ofrep_bulk", "POST")
# Refusals that callers can drive by the thousand (unknown keys, rate limits) are summarised.
bounded_refusals = RefusalLog(logger)


class EdgeError(Exception):
    """A refused SDK request; rendered in the API's error body or OFREP's shape."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def log_refusal(request: Request, error: EdgeError) -> None:
    """Refusals are logged like Django logs 4xx (django.request): method, path, status, why.

    401s and 429s, which a caller can send by the thousand, at a bounded rate (RefusalLog).
    """
    client = request.client.host if request.client else "-"
    log = logger.warning
    if error.status in (401, 429):
        outcome = f"{error.status} {error.code}"
        log = functools.partial(bounded_refusals.record, outcome, client)
    log(
        "%s %s -> %s %s (%s): %s",
        request.method,
        request.url.path,
        error.status,
        error.code,
        client,
        error.message,
    )


def api_error(error: EdgeError) -> Response:
    headers = {"retry-after": str(error.retry_after)} if error.retry_after else {}
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer realm="flagsvc"'
    body = {"error": {"code": error.code, "message": error.message, "fields": {}}}
    return Response(json.dumps(body).encode(), error.status, headers=headers, media_type=JSON)


# OFREP's errorCode enum for a 400; any other 400 (e.g. an admin token naming no
# environment) is GENERAL, so stock providers can parse it.
OFREP_BAD_REQUEST_CODES = ("PARSE_ERROR", "INVALID_CONTEXT", "TARGETING_KEY_MISSING", "GENERAL")


def ofrep_error(error: EdgeError, key: str | None = None) -> Response:
    headers = dict(CORS_HEADERS)
    if error.retry_after:
        headers["retry-after"] = str(error.retry_after)
    code = error.code
    if error.status == 400 and code not in OFREP_BAD_REQUEST_CODES:
        code = "GENERAL"
    body: dict[str, Any] = {"errorCode": code, "errorDetails": error.message}
    if key is not None:
        body = {"key": key, **body}
    return Response(json.dumps(body).encode(), error.status, headers=headers, media_type=JSON)


class Edge:
    """The handlers, bound to one process's state and rate limiters (by key kind)."""

    def __init__(self, state: EdgeState, limiters: dict[str, RateLimiter]) -> None:
        self.state = state
        self.limiters = limiters

    # -- shared steps

    async def _principal(
        self, request: Request, *, allow_api_key: bool, allow_query: bool = False
    ) -> TokenPrincipal:
        headers = request.headers
        raw = ""
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise EdgeError(
                    401, "unauthenticated", "Send the key as 'Authorization: Bearer <key>'."
                )
            raw = value.strip()
        elif allow_api_key and headers.get("x-api-key"):
            raw = headers["x-api-key"].strip()
        elif allow_query and request.query_params.get("api_key"):
            raw = request.query_params["api_key"]
        if not raw:
            raise EdgeError(
                401,
                "unauthenticated",
                "No key: send 'Authorization: Bearer <server or client SDK key>'"
                + (" or 'X-API-Key: <key>'." if allow_api_key else "."),
            )
        client = request.client.host if request.client else "-"
        try:
            principal, why = await self.state.authenticate(raw, client)
        except KeyLookupThrottled as throttled:
            raise EdgeError(
                429,
                "rate_limited",
                f"Too many unknown keys from {client}; use a live key "
                f"(retry after {throttled.retry_after} s).",
                throttled.retry_after,
            ) from None
        if principal is None:
            raise EdgeError(401, "unauthenticated", f"{why[:1].upper()}{why[1:]}; use a live key.")
        return principal

    def _environment_of(
        self, request: Request, principal: TokenPrincipal, kinds: tuple[str, ...]
    ) -> str:
        if principal.kind not in kinds and principal.kind != "admin":
            needed = " or ".join(f"{k} SDK key" for k in kinds)
            raise EdgeError(
                403,
                "permission_denied",
                f"A {principal.kind} token cannot use this endpoint; use a {needed}.",
            )
        asked = request.query_params.get("environment")
        if principal.kind == "admin":
            if not asked:
                raise EdgeError(
                    400,
                    "invalid_request",
                    "Admin tokens must name the environment: ?environment=<key>.",
                )
            return asked
        if asked and asked != principal.environment_key:
            raise EdgeError(
                403,
                "permission_denied",
                f"This key belongs to {principal.environment_key!r}, not {asked!r}.",
            )
        assert principal.environment_key is not None
        return principal.environment_key

    def _limit(self, request: Request, principal: TokenPrincipal) -> None:
        client = request.client.host if request.client else "-"
        limiter = self.limiters["client" if principal.kind == "client" else "server"]
        retry_after = limiter.hit(f"{principal.digest[:16]}:{client}")
        if retry_after is not None:
            raise EdgeError(
                429,
                "rate_limited",
                f"Too many requests for this key from {client}; retry after {retry_after} s.",
                retry_after,
            )

    async def _snapshot(self, environment: str) -> Any:
        snapshot = self.state.current(environment) or await self.state.load(environment)
        if snapshot is None:
            raise EdgeError(404, "not_found", f"No environment {environment!r}.")
        return snapshot

    # -- GET /api/v1/sdk/snapshot/

    async def snapshot(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            principal = await self._principal(request, allow_api_key=False)
            environment = self._environment_of(request, principal, ("server",))
            self._limit(request, principal)
            snapshot = await self._snapshot(environment)
        except EdgeError as error:
            _observe_snapshot(error.status, started)
            log_refusal(request, error)
            return api_error(error)
        headers = {"cache-control": "no-cache", "vary": "Accept-Encoding"}
        gzip = "gzip" in request.headers.get("accept-encoding", "")
        headers["etag"] = snapshot.etag_gzip if gzip else snapshot.etag
        if_none_match = request.headers.get("if-none-match")
        if if_none_match and snapshot.matches(if_none_match):
            _observe_snapshot(304, started)
            return Response(status_code=304, headers=headers)
        if gzip:
            headers["content-encoding"] = "gzip"
            _observe_snapshot(200, started)
            return Response(snapshot.gzip_body, headers=headers, media_type=JSON)
        _observe_snapshot(200, started)
        return Response(snapshot.body, headers=headers, media_type=JSON)

    # -- GET /api/v1/sdk/stream/

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = time.perf_counter()
        try:
            principal = await self._principal(request, allow_api_key=True, allow_query=True)
            environment = self._environment_of(request, principal, ("server", "client"))
            self._limit(request, principal)
            snapshot = await self._snapshot(environment)
            self._stream_capacity(principal)  # no await from here until the stream subscribes
        except EdgeError as error:
            _observe_stream(error.status, started)
            log_refusal(request, error)
            await api_error(error)(scope, receive, send)
            return
        _observe_stream(200, started)
        await SSEStream(
            self.state,
            environment,
            Subscriber(kind=principal.kind, digest=principal.digest),
            snapshot.version,
            _last_event_id(request),
        )(scope, receive, send)

    def _stream_capacity(self, principal: TokenPrincipal) -> None:
        per_key, per_process = settings.STREAM_MAX_PER_KEY, settings.STREAM_MAX_PER_PROCESS
        if per_key and self.state.streams_per_key[principal.digest] >= per_key:
            metrics.STREAM_REFUSALS.labels("per_key").inc()
            raise EdgeError(
                429,
                "too_many_streams",
                f"This key already has {per_key} open streams on this server process "
                f"(STREAM_MAX_PER_KEY); close unused ones or retry after "
                f"{STREAM_RETRY_AFTER_SECONDS} s.",
                STREAM_RETRY_AFTER_SECONDS,
            )
        if per_process and self.state.stream_count >= per_process:
            metrics.STREAM_REFUSALS.labels("per_process").inc()
            raise EdgeError(
                429,
                "too_many_streams",
                f"This server process already holds {per_process} open streams "
                f"(STREAM_MAX_PER_PROCESS); retry after {STREAM_RETRY_AFTER_SECONDS} s.",
                STREAM_RETRY_AFTER_SECONDS,
            )

    # -- POST /ofrep/v1/evaluate/flags/{key} and /ofrep/v1/evaluate/flags

    async def _ofrep_request(
        self, request: Request
    ) -> tuple[EnvironmentSnapshot, dict[str, Any], TokenPrincipal, int]:
        """The snapshot, context, caller and body size of an OFREP request.

        The caller is checked before the body is read, and the body is read only up to
        MAX_OFREP_BODY (a refusal that leaves a large body unread closes the connection,
        see app.py).
        """
        principal = await self._principal(request, allow_api_key=True)
        environment = self._environment_of(request, principal, ("server", "client"))
        self._limit(request, principal)
        body = await _read_body(request, MAX_OFREP_BODY)
        try:
            payload = json_loads(body) if body else {}
        except ValueError as error:
            raise EdgeError(400, "PARSE_ERROR", f"The body is not valid JSON: {error}.") from None
        if not isinstance(payload, dict):
            raise EdgeError(
                400,
                "INVALID_CONTEXT",
                'Send a JSON object like {"context": {"targetingKey": "user-1"}}.',
            )
        context = payload.get("context", {})
        if not isinstance(context, dict):
            raise EdgeError(
                400, "INVALID_CONTEXT", '"context" must be a JSON object of attributes.'
            )
        targeting_key = context.get("targetingKey")
        if targeting_key is not None and not isinstance(targeting_key, str):
            raise EdgeError(400, "INVALID_CONTEXT", '"context.targetingKey" must be a string.')
        return await self._snapshot(environment), context, principal, len(body)

    async def ofrep_flag(self, request: Request) -> Response:
        started = time.perf_counter()
        key = request.path_params["key"]
        try:
            snapshot, context, principal, size = await self._ofrep_request(request)
            engine = snapshot.engine
            flag = engine.flags.get(key)
            if flag is None or (principal.kind == "client" and key not in snapshot.client_visible):
                raise EdgeError(
                    404,
                    "FLAG_NOT_FOUND",
                    f"Flag {key!r} does not exist in this environment or is not visible to this key.",
                )
            constant = snapshot.constant_answer(key, principal.kind)
            if constant is not None:
                _observe_ofrep(200, started)
                return Response(constant, headers=CORS_HEADERS, media_type=JSON)
            if _fits_on_the_loop(snapshot.evaluation_work(key), size):
                result = flag.evaluate(context, engine.flags)
            else:
                result = await run_evaluation(flag.evaluate, context, engine.flags)
            if (
                result.reason == Reason.DEFAULT
                and not context.get("targetingKey")
                and snapshot.flag_needs_targeting_key(key)
            ):
                raise EdgeError(
                    400,
                    "TARGETING_KEY_MISSING",
                    f"Flag {key!r} splits traffic by targetingKey; put one in the context.",
                )
        except EdgeError as error:
            _observe_ofrep(error.status, started)
            log_refusal(request, error)
            if error.code in (
                "unauthenticated",
                "permission_denied",
                "rate_limited",
                "not_found",
            ):
                return ofrep_error(error)
            return ofrep_error(error, key)
        body = ofrep_success(
            key, snapshot.value_type(key), result, snapshot.flag_metadata(key, principal.kind)
        )
        _observe_ofrep(200, started)
        return Response(json_bytes(body), headers=CORS_HEADERS, media_type=JSON)

    async def ofrep_bulk(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            snapshot, context, principal, size = await self._ofrep_request(request)
        except EdgeError as error:
            _observe_bulk(error.status, started)
            log_refusal(request, error)
            return ofrep_error(error)
        fingerprint = _context_fingerprint(context, principal.kind)
        etag = f'"{snapshot.key}:{snapshot.version}:{fingerprint}"'
        headers = {**CORS_HEADERS, "etag": etag, "cache-control": "no-cache"}
        if_none_match = request.headers.get("if-none-match", "")
        if etag in [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]:
            _observe_bulk(304, started)
            return Response(status_code=304, headers=headers)
        engine = snapshot.engine
        visible = snapshot.client_visible if principal.kind == "client" else None
        keys = [key for key in engine.flags if visible is None or key in visible]
        work = sum(snapshot.evaluation_work(key) for key in keys)
        if len(keys) <= MAX_INLINE_BULK_FLAGS and _fits_on_the_loop(work, size):
            body = _bulk_answers(snapshot, keys, context, principal.kind)
        else:
            body = await run_evaluation(_bulk_answers, snapshot, keys, context, principal.kind)
        _observe_bulk(200, started)
        return Response(body, headers=headers, media_type=JSON)

    async def preflight(self, request: Request) -> Response:
        return Response(status_code=204, headers=CORS_HEADERS)

    # -- operations

    async def healthz(self, request: Request) -> Response:
        return Response(_HEALTHZ, media_type=JSON)

    async def readyz(self, request: Request) -> Response:
        # 200 while this process can serve SDK reads, whatever is degraded (see readiness).
        outcome = await readiness(self.state, getattr(request.app.state, "fanout", None))
        return Response(
            json.dumps(outcome.body()).encode(), 200 if outcome.serving else 503, media_type=JSON
        )

    async def metrics(self, request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)


def _context_fingerprint(context: dict[str, Any], kind: str) -> str:
    # orjson: a 64 KB nested context takes 0.1 ms where json.dumps(sort_keys) takes 1.7.
    try:
        canonical = orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        canonical = json.dumps(context, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical + kind.encode()).hexdigest()[:20]


def _fits_on_the_loop(work: int, context_bytes: int) -> bool:
    return work * max(context_bytes, 64) <= INLINE_EVALUATION_BUDGET


def _bulk_answers(
    snapshot: EnvironmentSnapshot, keys: list[str], context: dict[str, Any], kind: str
) -> bytes:
    """The bulk OFREP body for these flags (pure: safe to run in a thread)."""
    flags = snapshot.engine.flags
    answers = []
    for key in keys:
        result = flags[key].evaluate(context, flags)
        if (
            result.reason == Reason.DEFAULT
            and not context.get("targetingKey")
            and snapshot.flag_needs_targeting_key(key)
        ):
            answers.append(
                {
                    "key": key,
                    "errorCode": "TARGETING_KEY_MISSING",
                    "errorDetails": "this flag splits by targetingKey",
                }
            )
            continue
        answers.append(
            ofrep_success(key, snapshot.value_type(key), result, snapshot.flag_metadata(key, kind))
        )
    return json_bytes({"flags": answers})


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes: on Content-Length before
    reading anything, else as soon as a chunked body goes over."""
    too_large = EdgeError(
        413,
        "INVALID_CONTEXT",
        f"The request body is over {limit // 1024} KB; send a smaller context.",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


class SSEStream:
    """One open stream: an event on connect, one per publish, keep-alives; ends on disconnect."""

    def __init__(
        self,
        state: EdgeState,
        environment: str,
        subscriber: Subscriber,
        version: int,
        last_event_id: int | None,
    ) -> None:
        self.state, self.environment, self.subscriber = state, environment, subscriber
        self.kind = subscriber.kind
        self.version, self.last_event_id = version, last_event_id

    def opening_events(self) -> list[bytes]:
        current = self.state.current(self.environment)
        version = current.version if current else self.version
        if (
            self.kind != "client"
            and self.last_event_id is not None
            and self.last_event_id < version
        ):
            chain = self.state.catch_up(self.environment, self.last_event_id, version)
            if chain:
                return chain
        return [
            sse_event("version", version, {"environment": self.environment, "version": version})
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self.subscriber
        self.state.subscribe(self.environment, subscriber)
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            if not subscriber.queue.full():
                subscriber.queue.put_nowait(None)

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        *[(k.encode(), v.encode()) for k, v in CORS_HEADERS.items()],
                    ],
                }
            )
            opening = b"retry: 2000\n\n" + b"".join(self.opening_events())
            await send({"type": "http.response.body", "body": opening, "more_body": True})
            if hasattr(getattr(getattr(send, "__self__", None), "flow", None), "write_paused"):
                subscriber.send = send  # uvicorn's: changes are written in place (deliver)
            # No timer per stream: keep-alives come through the queue (EdgeState.keep_alive),
            # so a kill wakes each stream once, with nothing to set up or cancel.
            while not disconnected.is_set():
                event = await subscriber.queue.get()
                if event is None:
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            subscriber.send = None
            self.state.unsubscribe(self.environment, subscriber)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
