"""`manage.py seed_demo`: environments, realistic flags and an admin login (safe to re-run)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from audit.recorder import Actor
from flags import rollouts, selectors, services

ENVIRONMENTS = [
    ("development", "Development"),
    ("staging", "Staging"),
    ("production", "Production"),
]

BOOL = {"on": True, "off": False}


def _split(**weights: int) -> dict[str, Any]:
    return {"split": [{"variant": v, "weight": w} for v, w in weights.items()]}


FLAGS: list[dict[str, Any]] = [
    {
        "key": "new-checkout",
        "name": "New checkout flow",
        "description": "Single-page checkout replacing the three-step flow.",
        "tags": ["payments", "checkout"],
        "owner": "payments-team",
        "client_visible": True,
        "states": {
            "development": {"enabled": True, "default_serve": {"variant": "on"}},
            "staging": {"enabled": True, "default_serve": {"variant": "on"}},
            "production": {
                "enabled": True,
                "targets": [{"variant": "on", "values": ["qa-alice", "qa-bob"]}],
                "default_serve": _split(on=2500, off=7500),
            },
        },
        # A scheduled ramp-up that `make run`'s worker carries on (admin: the flag's page).
        "rollout": {
            "environment": "production",
            "steps": [
                {"percentage": 30, "after": "2m"},
                {"percentage": 50, "after": "10m"},
                {"percentage": 75, "after": "1h"},
                {"percentage": 100, "after": "1d"},
            ],
        },
    },
    {
        "key": "payments.provider-b",
        "name": "Route card payments to provider B",
        "description": "Kill switch: turn off to fall back to provider A at once.",
        "tags": ["payments", "kill-switch"],
        "owner": "payments-team",
        "states": {
            env: {"enabled": True, "default_serve": {"variant": "on"}} for env, _ in ENVIRONMENTS
        },
    },
    {
        "key": "recommendations.enabled",
        "name": "Personalised recommendations",
        "description": "Kill switch for the recommendations service call on product pages.",
        "tags": ["kill-switch", "catalog"],
        "owner": "discovery-team",
        "client_visible": True,
        "states": {
            env: {"enabled": True, "default_serve": {"variant": "on"}} for env, _ in ENVIRONMENTS
        },
    },
    {
        "key": "eu-cookie-banner-v2",
        "name": "Cookie banner v2 for EU visitors",
        "tags": ["compliance"],
        "owner": "web-team",
        "client_visible": True,
        "states": {
            env: {
                "enabled": True,
                "rules": [
                    {
                        "id": "eu",
                        "description": "EU and EEA countries",
                        "conditions": [
                            {
                                "attribute": "country",
                                "operator": "in",
                                "value": [
                                    "AT",
                                    "BE",
                                    "DE",
                                    "DK",
                                    "ES",
                                    "FI",
                                    "FR",
                                    "IE",
                                    "IT",
                                    "NL",
                                    "NO",
                                    "PL",
                                    "PT",
                                    "SE",
                                ],
                            }
                        ],
                        "serve": {"variant": "on"},
                    }
                ],
                "default_serve": {"variant": "off"},
            }
            for env, _ in ENVIRONMENTS
        },
    },
    {
        "key": "search-ranking",
        "name": "Search ranking algorithm",
        "description": "Experiment: classic BM25 vs semantic vs hybrid ranking.",
        "type": "string",
        "variants": {"classic": "classic", "semantic": "semantic", "hybrid": "hybrid"},
        "off_variant": "classic",
        "tags": ["search", "experiment"],
        "owner": "search-team",
        "states": {
            "development": {"enabled": True, "default_serve": {"variant": "hybrid"}},
            "staging": {
                "enabled": True,
                "default_serve": _split(classic=3400, semantic=3300, hybrid=3300),
            },
            "production": {
                "enabled": True,
                "rules": [
                    {
                        "id": "staff",
                        "conditions": [{"operator": "in_segment", "value": "internal-staff"}],
                        "serve": {"variant": "hybrid"},
                    }
                ],
                "default_serve": _split(classic=8000, semantic=1000, hybrid=1000),
            },
        },
    },
    {
        "key": "upload.max-size-mb",
        "name": "Maximum upload size (MB)",
        "type": "number",
        "variants": {"small": 10, "large": 100, "huge": 1024.5},
        "off_variant": "small",
        "tags": ["storage"],
        "owner": "platform-team",
        "states": {
            env: {"enabled": True, "default_serve": {"variant": "large"}} for env, _ in ENVIRONMENTS
        },
    },
    {
        "key": "mobile.min-version-banner",
        "name": "Ask old app versions to update",
        "tags": ["mobile"],
        "owner": "mobile-team",
        "states": {
            env: {
                "enabled": True,
                "rules": [
                    {
                        "id": "old-apps",
                        "conditions": [
                            {"attribute": "app_version", "operator": "semver_lt", "value": "4.2.0"}
                        ],
                        "serve": {"variant": "on"},
                    }
                ],
                "default_serve": {"variant": "off"},
            }
            for env, _ in ENVIRONMENTS
        },
    },
    {
        "key": "homepage.hero",
        "name": "Homepage hero configuration",
        "type": "json",
        "variants": {
            "default": {"title": "Welcome", "cta": "Shop now"},
            "winter-sale": {
                "title": "Winter sale: up to 40% off",
                "cta": "See deals",
                "badge": "-40%",
            },
        },
        "off_variant": "default",
        "tags": ["marketing"],
        "owner": "growth-team",
        "client_visible": True,
        "states": {"production": {"enabled": True, "default_serve": {"variant": "winter-sale"}}},
    },
]


class Command(BaseCommand):
    help = (
        "Create demo environments, flags and an admin user; re-running adds only what is missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("seed_demo")
        environments = {}
        for key, name in ENVIRONMENTS:
            environment = selectors.environment_by_key(key)
            if environment is None:
                environment = services.environment_create(actor=actor, key=key, name=name)
                self.stdout.write(f"created environment {key}")
            environments[key] = environment
            if not selectors.segment_exists(environment, "internal-staff"):
                services.segment_create(
                    actor=actor,
                    environment=environment,
                    key="internal-staff",
                    name="Internal staff",
                    rules=[
                        {
                            "conditions": [
                                {
                                    "attribute": "email",
                                    "operator": "ends_with",
                                    "value": "@example.com",
                                }
                            ]
                        }
                    ],
                )
        for spec in FLAGS:
            if selectors.flag_by_key(spec["key"]) is not None:
                continue
            flag = services.flag_create(
                actor=actor,
                key=spec["key"],
                type=spec.get("type", "boolean"),
                variants=spec.get("variants"),
                off_variant=spec.get("off_variant"),
                name=spec.get("name", ""),
                description=spec.get("description", ""),
                tags=spec.get("tags", ()),
                owner=spec.get("owner", ""),
                client_visible=spec.get("client_visible", False),
            )
            for env_key, state in spec["states"].items():
                services.flag_state_update(
                    actor=actor,
                    flag=flag,
                    environment=environments[env_key],
                    reason="demo data",
                    **state,
                )
            if "rollout" in spec:
                rollouts.rollout_plan_create(
                    actor=actor,
                    flag=flag,
                    environment=environments[spec["rollout"]["environment"]],
                    steps=spec["rollout"]["steps"],
                    reason="demo data",
                )
            self.stdout.write(f"created flag {flag.key}")
        self._admin_login()
        live = selectors.live_state_count()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data ready: {len(environments)} environments, {live} flag states"
            )
        )

    def _admin_login(self) -> None:
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        user_model = get_user_model()
        user = user_model.objects.filter(username="admin").first()
        password = os.environ.get("FLAGSVC_ADMIN_PASSWORD", "")
        if not password and user is not None and password_file.exists():
            stored = password_file.read_text().strip()
            if user.check_password(stored):
                password = stored
        if user is None or not user.check_password(password):
            password = password or secrets.token_urlsafe(12)
            if user is None:
                user = user_model.objects.create_superuser("admin", "admin@example.com", password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(f"admin login: admin / {password}   (also in {password_file})")
