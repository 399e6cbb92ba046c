"""Guardrails: a rollout watches its own health in Prometheus and halts itself on a breach.

``prometheus`` asks one instant query; ``checks`` evaluates a guardrail, records the
check and acts once per breach (pause, step back, kill) as ``guardrail:<name>``;
``writes`` are people's changes to guardrails. A rollout step waits while a guardrail
is not known healthy (``flags.selectors.guardrails_blocking``, read by the scheduler).
"""

from flags.guardrails.checks import (
    breach_reason,
    guardrail_check,
    guardrail_read,
    guardrails_check_due,
)
from flags.guardrails.prometheus import QueryFailed, instant_query
from flags.guardrails.writes import (
    guardrail_create,
    guardrail_delete,
    guardrail_disable,
    guardrail_enable,
    guardrail_record,
    guardrail_update,
)

__all__ = [
    "QueryFailed",
    "breach_reason",
    "guardrail_check",
    "guardrail_create",
    "guardrail_delete",
    "guardrail_disable",
    "guardrail_enable",
    "guardrail_read",
    "guardrail_record",
    "guardrail_update",
    "guardrails_check_due",
    "instant_query",
]
