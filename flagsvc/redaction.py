"""A logging filter that keeps trigger secrets out of every log line.

A trigger URL's last segment is its only credential, and Django's ``django.request``
logger writes the path of every 4xx/5xx answer ("Too Many Requests:
/api/v1/triggers/<secret>/"). The filter replaces the secret in the message and its
arguments before any handler sees the record.
"""

from __future__ import annotations

import logging
import re

# The secret after /triggers/; numeric ids (/triggers/12/revoke/) are not secrets.
_TRIGGER_SECRET = re.compile(r"(/triggers/)(?!\d+(?:/|$))[^/\s?\"']+")
REDACTED = "<redacted>"


def redact_trigger_secrets(text: str) -> str:
    return _TRIGGER_SECRET.sub(rf"\g<1>{REDACTED}", text)


class RedactTriggerSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_trigger_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_trigger_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                key: redact_trigger_secrets(arg) if isinstance(arg, str) else arg
                for key, arg in record.args.items()
            }
        return True
