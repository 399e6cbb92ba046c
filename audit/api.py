"""The audit API: a filterable, cursor-paginated trail, exportable as CSV or JSON Lines.

``GET /api/v1/audit/`` answers pages newest first. ``?format=csv`` or
``?format=jsonl`` (or the matching Accept header) streams every matching event
as an attachment instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEvent
from audit.selectors import AuditFilters, audit_event_chunks, audit_events
from flagsvc.api.errors import InvalidParameter
from flagsvc.api.permissions import model_permission_class
from flagsvc.api.views import ApiListView, StrictPageSize

EXPORT_COLUMNS = (
    "sequence",
    "occurred_at",
    "actor",
    "actor_kind",
    "action",
    "target_type",
    "target_key",
    "flag_key",
    "environment_key",
    "before",
    "after",
    "reason",
    "request_id",
    "source_ip",
    "incident_id",
    "prev_hash",
    "hash",
)


def event_document(event: AuditEvent) -> dict[str, Any]:
    """One event as plain JSON values (before/after as JSON, not as their stored text)."""
    return {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "actor_kind": event.actor_kind,
        "action": event.action,
        "target_type": event.target_type,
        "target_key": event.target_key,
        "flag_key": event.flag_key,
        "environment_key": event.environment_key,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "request_id": event.request_id,
        "source_ip": event.source_ip,
        "incident_id": str(event.incident_id) if event.incident_id else None,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


class AuditEventOut(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="Position in the hash chain, from 1.")
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField(help_text="User name, token name, trigger or scheduler.")
    actor_kind = serializers.ChoiceField(choices=AuditEvent.ActorKind.values)
    action = serializers.CharField(help_text="e.g. flag.create, flag_state.update, flag.kill")
    target_type = serializers.CharField()
    target_key = serializers.CharField()
    flag_key = serializers.CharField()
    environment_key = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()
    request_id = serializers.CharField()
    source_ip = serializers.CharField()
    incident_id = serializers.UUIDField(allow_null=True)
    prev_hash = serializers.CharField()
    hash = serializers.CharField(help_text="SHA-256 over this event and prev_hash.")

    def to_representation(self, instance: AuditEvent) -> dict[str, Any]:
        return event_document(instance)


# --- export formats --------------------------------------------------------------------------


def _csv_text(rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...)).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """OWASP's CSV-injection defence: a leading single quote makes the cell plain text."""
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def _csv_cells(document: dict[str, Any]) -> list[Any]:
    def cell(name: str) -> Any:
        value = document[name]
        if name in ("before", "after"):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "" if value is None else _inert(value)

    return [cell(name) for name in EXPORT_COLUMNS]


def csv_header() -> str:
    return _csv_text([EXPORT_COLUMNS])


def csv_lines(events: Iterable[AuditEvent]) -> str:
    return _csv_text(_csv_cells(event_document(e)) for e in events)


def jsonl_lines(events: Iterable[AuditEvent]) -> str:
    return "".join(
        json.dumps(event_document(e), ensure_ascii=False, separators=(",", ":")) + "\n"
        for e in events
    )


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        # Successful exports stream (see AuditEventListView); this renders anything else.
        rows = data.get("results", []) if isinstance(data, dict) else data or []
        return (csv_header() + _csv_text(_csv_cells(r) for r in rows)).encode()


class JSONLinesRenderer(BaseRenderer):
    media_type = "application/jsonl"
    format = "jsonl"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        rows = data.get("results", []) if isinstance(data, dict) else data or []
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


EXPORTS = {"csv": (csv_lines, csv_header), "jsonl": (jsonl_lines, lambda: "")}


# --- parameters ----------------------------------------------------------------------------

_SPACED_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def _moment(request: Request, name: str) -> dt.datetime | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    # An unencoded "+02:00" arrives as " 02:00"; take it as the offset it was meant to be.
    value = _SPACED_OFFSET.sub(r"+\1", raw)
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = dt.datetime.combine(day, dt.time()) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidParameter(
            name,
            f"{raw!r} is not an ISO 8601 date or date-time, e.g. 2026-03-01 or "
            "2026-03-01T09:00:00Z",
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def _filters(request: Request) -> AuditFilters:
    params = request.query_params
    incident: uuid.UUID | None = None
    if "incident" in params:  # ?incident= is a mistake, not "any incident"
        try:
            incident = uuid.UUID(params["incident"])
        except ValueError:
            raise InvalidParameter(
                "incident", f"{params['incident']!r} is not an incident id (a UUID)"
            ) from None
    actor_kind = params.get("actor_kind") or None
    if actor_kind is not None and actor_kind not in AuditEvent.ActorKind.values:
        raise InvalidParameter(
            "actor_kind", f"{actor_kind!r} is not one of {', '.join(AuditEvent.ActorKind.values)}"
        )
    since, until = _moment(request, "since"), _moment(request, "until")
    if since is not None and until is not None and until <= since:
        raise InvalidParameter("until", "must be later than since")
    return AuditFilters(
        flag=params.get("flag") or None,
        environment=params.get("environment") or None,
        actor=params.get("actor") or None,
        actor_kind=actor_kind,
        actions=[a.strip() for a in (params.get("action") or "").split(",") if a.strip()],
        since=since,
        until=until,
        incident=incident,
    )


AUDIT_PARAMETERS = [
    OpenApiParameter("flag", OpenApiTypes.STR, description="Events about this flag key."),
    OpenApiParameter("environment", OpenApiTypes.STR, description="Events in this environment."),
    OpenApiParameter("actor", OpenApiTypes.STR, description="Events by this actor (exact name)."),
    OpenApiParameter("actor_kind", OpenApiTypes.STR, enum=list(AuditEvent.ActorKind.values)),
    OpenApiParameter(
        "action",
        OpenApiTypes.STR,
        description="An action, or several separated by commas (flag.kill,flag.restore).",
    ),
    OpenApiParameter(
        "since", OpenApiTypes.STR, description="ISO 8601 date or date-time; events at or after."
    ),
    OpenApiParameter(
        "until", OpenApiTypes.STR, description="ISO 8601 date or date-time; events before."
    ),
    OpenApiParameter("incident", OpenApiTypes.UUID, description="Events of this kill incident."),
    OpenApiParameter(
        "format",
        OpenApiTypes.STR,
        enum=["json", "csv", "jsonl"],
        description="csv or jsonl: every matching event (not a page), newest first, streamed "
        "as an attachment.",
    ),
]


class AuditCursorPagination(StrictPageSize):
    ordering = "-sequence"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class AuditEventListView(ApiListView):
    permission_classes = [model_permission_class(AuditEvent)]
    pagination_class = AuditCursorPagination
    serializer_class = AuditEventOut
    renderer_classes = [JSONRenderer, CSVRenderer, JSONLinesRenderer]

    @extend_schema(
        operation_id="audit_list",
        summary="The audit trail, newest first: filter, page, or export as CSV / JSON Lines",
        parameters=AUDIT_PARAMETERS,
        responses={
            (200, "application/json"): AuditEventOut(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/jsonl"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        filters = _filters(request)
        export = request.accepted_renderer.format
        if export in EXPORTS:
            AuditCursorPagination().get_page_size(request)  # exports ignore it, not a bad one
            return self._export(request, filters, export)
        page = self.paginate_queryset(audit_events(filters))
        return self.get_paginated_response(AuditEventOut(page, many=True).data)

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # DRF's answer to an unknown ?format=
            raise InvalidParameter(
                "format", f"{request.query_params.get('format')!r} is not one of json, csv, jsonl"
            ) from None

    def _export(
        self, request: Request, filters: AuditFilters, export: str
    ) -> StreamingHttpResponse:
        lines, header = EXPORTS[export]
        chunks = audit_event_chunks(filters)

        def body() -> Iterator[str]:
            yield header()
            for chunk in chunks:
                yield lines(chunk)

        def next_chunk() -> list[AuditEvent] | None:
            return next(chunks, None)

        async def async_body() -> AsyncIterator[str]:
            # Under ASGI, stream without buffering: each chunk is one query in the sync thread.
            yield header()
            while (chunk := await sync_to_async(next_chunk)()) is not None:
                yield lines(chunk)

        streamed = async_body() if isinstance(request._request, ASGIRequest) else body()
        renderer = request.accepted_renderer
        response = StreamingHttpResponse(
            streamed, content_type=f"{renderer.media_type}; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="flagsvc-audit-{stamp}.{export}"'
        response["Cache-Control"] = "no-store"
        return response
