"""Django admin for engineers: flags with their per-environment states, kills, segments, credentials.

Every save and action calls the services (audited, actor = the staff user); reads go
through ``flags.selectors``. Importing this package registers every ModelAdmin.
"""

from flags.admin import (
    audit,
    credentials,
    environments,
    flags,
    guardrails,  # guardrails and outbound webhooks (issue 14)
    segments,
    webhooks,
)

__all__ = ["audit", "credentials", "environments", "flags", "guardrails", "segments", "webhooks"]
