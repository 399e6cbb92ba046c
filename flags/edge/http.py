"""The SDK edge's endpoints: snapshot (ETag/304, gzip), SSE stream, OFREP, health and metrics.

Steady state touches neither the ORM nor Django's middleware: every answer comes
from the process's EdgeState. Errors use the API's body for the SDK paths and
OFREP's own shapes for /ofrep/.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from django.conf import settings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flags.edge.errors import JSON, EdgeError, api_error, log_refusal, ofrep_error
from flags.edge.ofrep import (
    MAX_INLINE_BULK_FLAGS,
    bulk_answers,
    context_fingerprint,
    fits_on_the_loop,
    ofrep_success,
)
from flags.edge.ratelimit import RateLimiter
from flags.edge.readiness import readiness
from flags.edge.snapshots import EnvironmentSnapshot
from flags.edge.sse import SSEStream, Subscriber, last_event_id
from flags.edge.state import EdgeState, KeyLookupThrottled, run_evaluation
from flags.publish import json_bytes, json_loads
from flags.tokens import TokenPrincipal
from flagsvc import metrics
from flagsvc_sdk.engine import Reason

logger = logging.getLogger("flags.edge")

MAX_OFREP_BODY = 64 * 1024
STREAM_RETRY_AFTER_SECONDS = 10

# The process id tells which worker answered (useful behind flagsvc.serve's balancing).
_HEALTHZ = f'{{"status":"ok","pid":{os.getpid()}}}'.encode()
_observe_snapshot = metrics.Observer("edge:snapshot")
_observe_stream = metrics.Observer("edge:stream")
_observe_ofrep = metrics.Observer("edge:ofrep_flag", "POST")
_observe_bulk = metrics.Observer("edge:ofrep_bulk", "POST")


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
            last_event_id(request),
        )(scope, receive, send)

    def _stream_capacity(self, principal: TokenPrincipal) -> None:
        if self.state.draining:
            raise EdgeError(
                503,
                "shutting_down",
                "This server process is stopping; reconnect (another one takes the stream).",
                1,
            )
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
                return Response(constant, media_type=JSON)
            if fits_on_the_loop(snapshot.evaluation_work(key), size):
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
        return Response(json_bytes(body), media_type=JSON)

    async def ofrep_bulk(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            snapshot, context, principal, size = await self._ofrep_request(request)
        except EdgeError as error:
            _observe_bulk(error.status, started)
            log_refusal(request, error)
            return ofrep_error(error)
        fingerprint = context_fingerprint(context, principal.kind)
        etag = f'"{snapshot.key}:{snapshot.version}:{fingerprint}"'
        headers = {"etag": etag, "cache-control": "no-cache"}
        if_none_match = request.headers.get("if-none-match", "")
        if etag in [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]:
            _observe_bulk(304, started)
            return Response(status_code=304, headers=headers)
        engine = snapshot.engine
        visible = snapshot.client_visible if principal.kind == "client" else None
        keys = [key for key in engine.flags if visible is None or key in visible]
        work = sum(snapshot.evaluation_work(key) for key in keys)
        if len(keys) <= MAX_INLINE_BULK_FLAGS and fits_on_the_loop(work, size):
            body = bulk_answers(snapshot, keys, context, principal.kind)
        else:
            body = await run_evaluation(bulk_answers, snapshot, keys, context, principal.kind)
        _observe_bulk(200, started)
        return Response(body, headers=headers, media_type=JSON)

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
