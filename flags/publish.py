"""After-commit publication of a new environment version to caches and subscribers."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def environment_version_published(environment_id: int, environment_key: str, version: int) -> None:
    """Called once per changed environment after the change commits.

    The cache and fan-out are wired in by the API layer; until then the new
    version is only logged (SDK-facing readers rebuild from the database).
    """
    logger.info("environment %s is now at version %s", environment_key, version)
