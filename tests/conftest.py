"""Shared fixtures: an actor, environments and a flag factory, all made through the services."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def actor() -> Actor:
    return Actor.cli("tester")


@pytest.fixture
def environments(db: None, actor: Actor) -> dict[str, Environment]:
    return {
        key: services.environment_create(actor=actor, key=key)
        for key in ("development", "staging", "production")
    }


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


@pytest.fixture
def make_flag(actor: Actor, environments: dict[str, Environment]) -> Callable[..., Flag]:
    def make(key: str = "new-checkout", **kwargs: Any) -> Flag:
        return services.flag_create(actor=actor, key=key, **kwargs)

    return make


def refreshed(environment: Environment) -> Environment:
    environment.refresh_from_db()
    return environment
