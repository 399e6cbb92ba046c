"""Settings for the test suite: the real settings with test-only secrets filled in."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# Inherited by the production-settings processes tests start, like SECRET_KEY.
os.environ.setdefault("AUDIT_CHAIN_KEYS", "test:test-only-audit-chain-key-not-for-production")
os.environ.setdefault("FLAGSVC_ENV_FILE", "")  # never a developer's `make run` settings

from flagsvc.settings import *  # noqa: F403
from flagsvc.settings import DATABASES, REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False  # the test client and the in-process servers speak plain HTTP

# One test database per test process, so that two runs side by side never share one.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: the edge's threads and the test share it with
    # SQLite's normal locking (shared-cache memory databases fail with "table is locked").
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"flagsvc-test-{os.getpid()}.sqlite3")
    }
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

if REDIS_URL:
    from flagsvc.settings import CACHES  # defined when REDIS_URL is set

    # Tests flush their Redis database between tests: never the one REDIS_URL names.
    REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/" + os.environ.get("REDIS_TEST_DB", "15")
    CACHES["default"]["LOCATION"] = REDIS_URL
