"""Django admin for engineers: flags with their per-environment states, kills, segments, credentials.

Every save and action calls the services (audited, actor = the staff user); reads go
through ``flags.selectors``. Importing this package registers every ModelAdmin.
"""

from flags.admin import (  # guardrails and outbound webhooks (issue 14)
    credentials,
    environments,
    flags,
    guardrails,
    segments,
    webhooks,
)

__all__ = ["credentials", "environments", "flags", "guardrails", "segments", "webhooks"]
