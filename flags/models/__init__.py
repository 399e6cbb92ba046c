"""The flag domain's models: ``core`` (environments, flags, states, segments, issued secrets,
rollout plans, edge processes, emergency records) and ``guardrails`` (guardrails and webhooks).

Models hold data and its invariants only. Every write goes through ``flags.services``.
"""

from flags.models.core import (
    ApiToken,
    EdgeProcess,
    EmergencyRecord,
    Environment,
    Flag,
    FlagState,
    IssuedSecret,
    KillTrigger,
    RolloutPlan,
    RolloutStep,
    Segment,
    Tag,
    key_validator,
    new_lineage,
    new_revision,
)
from flags.models.guardrails import (
    Guardrail,
    GuardrailCheck,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "ApiToken",
    "EdgeProcess",
    "EmergencyRecord",
    "Environment",
    "Flag",
    "FlagState",
    "Guardrail",
    "GuardrailCheck",
    "IssuedSecret",
    "KillTrigger",
    "RolloutPlan",
    "RolloutStep",
    "Segment",
    "Tag",
    "WebhookDelivery",
    "WebhookSubscription",
    "key_validator",
    "new_lineage",
    "new_revision",
]
