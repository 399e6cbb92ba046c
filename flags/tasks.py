"""Celery tasks of the flag domain (scheduled ramp-ups arrive with rollout plans)."""
