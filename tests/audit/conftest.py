"""The management API's fixtures (tokens, clients) for the audit API's tests."""

from tests.api.conftest import admin_token, api, fresh_rate_limits, issue

__all__ = ["admin_token", "api", "fresh_rate_limits", "issue"]
