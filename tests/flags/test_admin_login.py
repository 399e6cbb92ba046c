"""Admin login throttling (django-axes): by address across usernames, by username across addresses."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "right-password-123"
LIMIT = 10  # ADMIN_LOGIN_FAILURE_LIMIT's default


@pytest.fixture
def admin_account(db: None) -> User:
    return User.objects.create_superuser("admin", password=PASSWORD)


def _login(username: str, password: str, address: str = "203.0.113.7", **headers: str) -> Any:
    return Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password}, headers=headers
    )


def _logged_in(response: Any) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def test_spraying_many_usernames_from_one_address__locks_the_address(admin_account: User) -> None:
    for n in range(LIMIT):
        _login(f"user{n}", "Winter2026!")

    locked = _login("admin", PASSWORD)

    assert locked.status_code == 429
    assert not locked.wsgi_request.user.is_authenticated
    # Another address is not locked, and the admin's own account is not either.
    assert _logged_in(_login("admin", PASSWORD, address="198.51.100.1"))


def test_one_username_from_many_addresses__locks_the_username(admin_account: User) -> None:
    for n in range(LIMIT):
        _login("admin", "guess", address=f"198.51.100.{n + 1}")

    locked = _login("admin", PASSWORD, address="192.0.2.99")

    assert locked.status_code == 429
    # The address itself is not locked: another account's login there just fails as usual.
    assert _login("someone-else", "x", address="192.0.2.99").status_code == 200


def test_below_the_limit__a_successful_login_resets_the_count(admin_account: User) -> None:
    for n in range(LIMIT - 1):
        _login(f"user{n}", "guess")
    assert _logged_in(_login("admin", PASSWORD))

    for n in range(LIMIT - 1):
        _login(f"other{n}", "guess")

    assert _logged_in(_login("admin", PASSWORD))


def test_forwarded_for_header__is_not_trusted_to_spread_failures(admin_account: User) -> None:
    for n in range(LIMIT):
        _login(f"user{n}", "guess", **{"X-Forwarded-For": f"10.0.0.{n}"})
    assert _login("admin", PASSWORD, **{"X-Forwarded-For": "10.0.1.1"}).status_code == 429


def test_lockout_page__says_why_for_how_long_and_how_to_lift_it(admin_account: User) -> None:
    for n in range(LIMIT):
        _login(f"user{n}", "guess")

    locked = _login("admin", PASSWORD)

    page = locked.content.decode()
    assert locked["Retry-After"] == str(15 * 60)
    assert "Too many failed logins" in page and "15 minutes" in page
    assert "axes_reset_username" in page


def test_wrong_password_below_the_limit__the_usual_login_error(admin_account: User) -> None:
    response = _login("admin", "wrong")
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()
