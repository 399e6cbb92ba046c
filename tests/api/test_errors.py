"""One error body for every 4xx/5xx under /api/, with a message saying what to fix."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings

from flags.api import selectors
from flags.models import Environment
from flagsvc.api import errors
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db


def test_malformed_json__400_malformed_json(api: Client, environments: object) -> None:
    response = api.post(
        "/api/v1/environments/", data='{"key": "qa",', content_type="application/json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "malformed_json" and "not valid JSON" in error["message"]
    assert not Environment.objects.filter(key="qa").exists()


def test_body_not_an_object__400_names_the_body(api: Client, environments: object) -> None:
    response = send(api, "POST", "/api/v1/environments/", ["qa"])
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["body"]


def test_bad_field__400_lists_every_field(api: Client, environments: object) -> None:
    response = send(api, "POST", "/api/v1/tokens/", {"kind": "root", "colour": "red"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == {"colour"}  # unknown fields are refused first
    assert error["message"].startswith("colour: unknown field")


def test_non_json_body__415_says_send_json(api: Client, environments: object) -> None:
    response = api.post("/api/v1/environments/", data="key=qa", content_type="text/plain")
    assert response.status_code == 415
    error = error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]


def test_form_body__415(api: Client, environments: object) -> None:
    response = api.post("/api/v1/environments/", data={"key": "qa"})
    assert response.status_code == 415


def test_unknown_method__405_lists_the_allowed_ones(api: Client) -> None:
    response = send(api, "DELETE", "/api/v1/environments/")
    assert response.status_code == 405
    error = error_of(response)
    assert error["code"] == "method_not_allowed" and "Use GET, POST." in error["message"]


def test_unacceptable_accept__406(api: Client) -> None:
    response = send(api, "GET", "/api/v1/flags/", Accept="text/csv")
    assert response.status_code == 406
    assert error_of(response)["code"] == "not_acceptable"


@pytest.mark.parametrize(
    "path", ["/api/v2/flags/", "/api/v1/nothing-here/", "/api/v1/flags/x/y/z/", "/api/"]
)
def test_unknown_path_under_api__404_envelope_even_without_a_token(db: None, path: str) -> None:
    response = Client().post(path)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found" and "/api/docs/" in error["message"]


def test_missing_trailing_slash__404_says_which_path_was_meant(api: Client) -> None:
    message = error_of(send(api, "GET", "/api/v1/environments"))["message"]
    assert "Did you mean /api/v1/environments/" in message


def test_body_too_large__413(api: Client, environments: object) -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=200):
        response = send(
            api, "POST", "/api/v1/environments/", {"key": "qa", "description": "x" * 500}
        )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert not Environment.objects.filter(key="qa").exists()


def test_too_many_requests__429_with_retry_after(api: Client) -> None:
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"admin_token": "2/minute"}}
    with override_settings(REST_FRAMEWORK=rates):
        statuses = [send(api, "GET", "/api/v1/environments/").status_code for _ in range(3)]
        refused = send(api, "GET", "/api/v1/environments/")
    assert statuses == [200, 200, 429]
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    error = error_of(refused)
    assert error["code"] == "throttled" and "retry in" in error["message"]


def test_rate_limit__counts_each_token_separately(api: Client, issue: Any) -> None:
    from tests.api.conftest import bearer

    other = bearer(issue("admin", name="other-bot"))
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"admin_token": "1/minute"}}
    with override_settings(REST_FRAMEWORK=rates):
        assert send(api, "GET", "/api/v1/environments/").status_code == 200
        assert send(other, "GET", "/api/v1/environments/").status_code == 200
        assert send(api, "GET", "/api/v1/environments/").status_code == 429


def test_unexpected_error__500_envelope_with_request_id(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "environment_list", broken)
    response = send(api, "GET", "/api/v1/environments/", **{"X-Request-ID": "req-42"})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "req-42" in error["message"] and "database on fire" not in error["message"]


def test_handler500__envelope_under_api_only(db: None) -> None:
    api_request = RequestFactory().get("/api/v1/flags/")
    response = errors.server_error(api_request)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    admin_response = errors.server_error(RequestFactory().get("/admin/"))
    assert admin_response.status_code == 500
    assert "application/json" not in admin_response["Content-Type"]
