"""Management API routes, mounted at /api/v1/ by flagsvc/urls.py."""

from django.urls import path

from flags.api import (
    environments,
    flags,
    guardrails,
    kills,
    rollouts,
    segments,
    states,
    tokens,
    triggers,
    webhooks,
)

urlpatterns = [
    path("environments/", environments.EnvironmentListView.as_view(), name="api-environments"),
    path(
        "environments/<str:key>/",
        environments.EnvironmentDetailView.as_view(),
        name="api-environment",
    ),
    path(
        "environments/<str:environment>/segments/",
        segments.SegmentListView.as_view(),
        name="api-segments",
    ),
    path(
        "environments/<str:environment>/segments/<str:key>/",
        segments.SegmentDetailView.as_view(),
        name="api-segment",
    ),
    path("flags/", flags.FlagListView.as_view(), name="api-flags"),
    path("flags/<str:key>/", flags.FlagDetailView.as_view(), name="api-flag"),
    path("flags/<str:key>/archive/", flags.FlagArchiveView.as_view(), name="api-flag-archive"),
    path(
        "flags/<str:key>/unarchive/",
        flags.FlagUnarchiveView.as_view(),
        name="api-flag-unarchive",
    ),
    path(
        "flags/<str:key>/environments/<str:environment>/",
        states.FlagStateView.as_view(),
        name="api-flag-state",
    ),
    # Scheduled ramp-ups: one rollout plan per flag and environment.
    path(
        "flags/<str:key>/environments/<str:environment>/rollout-plan/",
        rollouts.RolloutPlanView.as_view(),
        name="api-rollout-plan",
    ),
    *(
        path(
            f"flags/<str:key>/environments/<str:environment>/rollout-plan/{action}/",
            view.as_view(),
            name=f"api-rollout-plan-{action}",
        )
        for action, view in (
            ("pause", rollouts.RolloutPlanPauseView),
            ("resume", rollouts.RolloutPlanResumeView),
            ("abort", rollouts.RolloutPlanAbortView),
            ("skip", rollouts.RolloutPlanSkipView),
        )
    ),
    # Guardrails: a flag watches its health in Prometheus (flags/api/guardrails.py).
    path(
        "flags/<str:key>/environments/<str:environment>/guardrails/",
        guardrails.GuardrailListView.as_view(),
        name="api-guardrails",
    ),
    path(
        "flags/<str:key>/environments/<str:environment>/guardrails/<str:name>/",
        guardrails.GuardrailDetailView.as_view(),
        name="api-guardrail",
    ),
    path(
        "flags/<str:key>/environments/<str:environment>/guardrails/<str:name>/evaluate/",
        guardrails.GuardrailEvaluateView.as_view(),
        name="api-guardrail-evaluate",
    ),
    # Outbound webhooks of an environment (flags/api/webhooks.py).
    path(
        "environments/<str:environment>/webhooks/",
        webhooks.WebhookListView.as_view(),
        name="api-webhooks",
    ),
    path(
        "environments/<str:environment>/webhooks/<int:webhook_id>/",
        webhooks.WebhookDetailView.as_view(),
        name="api-webhook",
    ),
    path(
        "environments/<str:environment>/webhooks/<int:webhook_id>/rotate-secret/",
        webhooks.WebhookRotateSecretView.as_view(),
        name="api-webhook-rotate-secret",
    ),
    path(
        "environments/<str:environment>/webhooks/<int:webhook_id>/deliveries/",
        webhooks.WebhookDeliveriesView.as_view(),
        name="api-webhook-deliveries",
    ),
    # The kill switch (kill keys, admin tokens, staff sessions; triggers need only their URL).
    path("flags/<str:key>/kill/", kills.FlagKillView.as_view(), name="api-flag-kill"),
    path("flags/<str:key>/restore/", kills.FlagRestoreView.as_view(), name="api-flag-restore"),
    path("kill/", kills.TagKillView.as_view(), name="api-tag-kill"),
    path("restore/", kills.TagRestoreView.as_view(), name="api-tag-restore"),
    path("kills/", kills.KillListView.as_view(), name="api-kills"),
    path("triggers/", triggers.TriggerListView.as_view(), name="api-triggers"),
    path(
        "triggers/<int:trigger_id>/revoke/",
        triggers.TriggerRevokeView.as_view(),
        name="api-trigger-revoke",
    ),
    path("triggers/<str:secret>/", triggers.TriggerFireView.as_view(), name="api-trigger-fire"),
    path("tokens/", tokens.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", tokens.TokenDetailView.as_view(), name="api-token"),
    path(
        "tokens/<int:token_id>/revoke/",
        tokens.TokenRevokeView.as_view(),
        name="api-token-revoke",
    ),
]
