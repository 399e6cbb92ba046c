"""Django settings for flagsvc, read from the environment (django-environ).

Every variable is listed, with its default, in the README's configuration table.
Development defaults apply only when DEBUG is on (``make run`` turns it on);
with DEBUG off the process refuses to start without SECRET_KEY and ALLOWED_HOSTS.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from audit.keys import parse_chain_keys

BASE_DIR = Path(__file__).resolve().parent.parent
_VAR_DIR_DEFAULT = os.environ.get("FLAGSVC_VAR_DIR", str(BASE_DIR / "var"))
# `make run` writes its development settings to var/dev.env (flagsvc/run.py), so that
# manage.py in a second terminal uses the same ones. Real environment variables win;
# FLAGSVC_ENV_FILE names another file, or none when empty.
ENV_FILE = os.environ.get("FLAGSVC_ENV_FILE", str(Path(_VAR_DIR_DEFAULT) / "dev.env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)
VAR_DIR = Path(environ.Env().str("FLAGSVC_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, []),
    CSRF_TRUSTED_ORIGINS=(list, []),
    LOG_LEVEL=(str, "INFO"),
    ROLLOUT_TICK_SECONDS=(float, 15.0),
    GUARDRAIL_TICK_SECONDS=(float, 10.0),
    STREAM_KEEPALIVE_SECONDS=(float, 15.0),
    EDGE_WATCH_SECONDS=(float, 5.0),
    EDGE_FALLBACK_WATCH_SECONDS=(float, 0.5),
)

DEBUG = env("DEBUG")

_DEV_SECRET_KEY = "django-insecure-flagsvc-development-only"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
# Earlier keys, newest first: sessions and sealed webhook secrets made with them still open
# (flagsvc.sealed), so SECRET_KEY can be rotated without logging everyone out or losing them.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env("ALLOWED_HOSTS") or (["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(or DEBUG=true for local development only)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is empty. Set ALLOWED_HOSTS to the comma-separated host names "
            "this service answers to (or DEBUG=true for local development only)."
        )
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

# The audit chain's HMAC keys (audit/keys.py): `id:secret` pairs, the first signs new
# events, the others still verify what they signed. A key of its own, not derived from
# SECRET_KEY: it must be kept as long as the audit trail, SECRET_KEY is rotated and retired.
_DEV_AUDIT_CHAIN_KEY = "dev:flagsvc-development-only-audit-chain-key"
try:
    AUDIT_CHAIN_KEYS = parse_chain_keys(
        env.list("AUDIT_CHAIN_KEYS", default=[_DEV_AUDIT_CHAIN_KEY] if DEBUG else []),
        production=not DEBUG,
    )
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
if not DEBUG and (
    not AUDIT_CHAIN_KEYS or _DEV_AUDIT_CHAIN_KEY.partition(":")[2] in AUDIT_CHAIN_KEYS.values()
):
    raise ImproperlyConfigured(
        "AUDIT_CHAIN_KEYS is not set. Set it to id:secret (e.g. k1:<python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'>), keep it outside the database and never lose it: "
        "it proves the audit trail untouched (or DEBUG=true for local development only)."
    )
# Log a checkpoint (logger audit.checkpoint) every N audit events (0: only at key changes).
AUDIT_CHECKPOINT_EVERY = env.int("AUDIT_CHECKPOINT_EVERY", default=1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "audit",
    "flags",
]

MIDDLEWARE = [
    "flagsvc.metrics.django_metrics_middleware",
    "django.middleware.security.SecurityMiddleware",
    "flagsvc.middleware.ClientAddressMiddleware",
    "flagsvc.middleware.RequestIdMiddleware",
    "flagsvc.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "flagsvc.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "flagsvc" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "flagsvc.asgi.application"
WSGI_APPLICATION = "flagsvc.wsgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'flagsvc.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is shared by the web server and the Celery worker:
    # WAL lets readers run beside the writer, IMMEDIATE takes the write lock up
    # front so two writers queue instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Fail fast when the database host does not answer (the default waits for the OS).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    # A connection pool (psycopg_pool): under ASGI every request's sync code runs in a fresh
    # thread, so Django's per-thread persistent connections would reconnect on every request;
    # a pool hands each one a warm connection instead.
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
            # Short: a request waiting this long for a connection is told the database is
            # unavailable (a kill then goes through Redis) instead of hanging.
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
            # While the database is out the pool retries with doubling delays; giving up after
            # this long lets the next request start over at once, so a pool is back within
            # seconds of the database (psycopg's default, 300 s, can wait as long as the outage).
            "reconnect_timeout": env.float("DATABASE_POOL_RECONNECT_TIMEOUT", default=10.0),
        }
    # Checked before use (with the pool: on every borrow): after a database restart or
    # failover, the connections it dropped are replaced instead of failing requests.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "flagsvc",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        }
    }

# The SDK edge (flags/edge): stream keep-alive interval, and how often each process checks
# the database for versions it missed (slowly while Redis pub/sub is healthy, fast without it).
STREAM_KEEPALIVE_SECONDS = env("STREAM_KEEPALIVE_SECONDS")
EDGE_WATCH_SECONDS = env("EDGE_WATCH_SECONDS")
EDGE_FALLBACK_WATCH_SECONDS = env("EDGE_FALLBACK_WATCH_SECONDS")

# SDK edge limits. Requests per second per (key, client address), by key kind (0 = none):
# server keys serve busy services that evaluate remotely, client keys serve browsers,
# many of them behind one NAT address. The older single SDK_RATE_LIMIT_PER_SECOND, when
# set, is the default of both. A key missing from the edge's token map costs a database
# lookup, so such lookups are limited per client address before they happen. Open SSE
# streams are capped per key and per process (0 = no cap).
_SDK_RATE_LIMIT_ANY_KIND = env.int("SDK_RATE_LIMIT_PER_SECOND", default=None)
SDK_RATE_LIMIT_SERVER_PER_SECOND = env.int(
    "SDK_RATE_LIMIT_SERVER_PER_SECOND",
    default=2000 if _SDK_RATE_LIMIT_ANY_KIND is None else _SDK_RATE_LIMIT_ANY_KIND,
)
SDK_RATE_LIMIT_CLIENT_PER_SECOND = env.int(
    "SDK_RATE_LIMIT_CLIENT_PER_SECOND",
    default=200 if _SDK_RATE_LIMIT_ANY_KIND is None else _SDK_RATE_LIMIT_ANY_KIND,
)
SDK_UNKNOWN_KEY_LOOKUPS_PER_SECOND = env.int("SDK_UNKNOWN_KEY_LOOKUPS_PER_SECOND", default=5)
STREAM_MAX_PER_KEY = env.int("STREAM_MAX_PER_KEY", default=2500)
STREAM_MAX_PER_PROCESS = env.int("STREAM_MAX_PER_PROCESS", default=10000)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # Its exchange table; kombu's default is ./control in whatever folder the process runs.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Lets several deployments (or test runs) share one broker without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Scheduled ramp-ups (flags/rollouts/): beat sends the tick every ROLLOUT_TICK_SECONDS; a
# tick nobody picked up within one interval is dropped (the next one does the same work).
ROLLOUT_TICK_SECONDS = env("ROLLOUT_TICK_SECONDS")
GUARDRAIL_TICK_SECONDS = env("GUARDRAIL_TICK_SECONDS")
# Where guardrails send their queries unless one names its own Prometheus.
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="")
GUARDRAIL_QUERY_TIMEOUT_SECONDS = env.float("GUARDRAIL_QUERY_TIMEOUT_SECONDS", default=5.0)
# A rollout step needs every guardrail's latest check to be healthy and this recent.
GUARDRAIL_FRESH_SECONDS = env.float(
    "GUARDRAIL_FRESH_SECONDS", default=3 * GUARDRAIL_TICK_SECONDS + 5
)
# Webhook deliveries: attempts per event, the first retry's delay (doubling after), the
# timeout of one attempt, and how many failed attempts in a row disable a subscription.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_DISABLE_AFTER = env.int("WEBHOOK_DISABLE_AFTER", default=20)
# Links in chat messages point at the admin here (e.g. https://flags.example.com).
FLAGSVC_PUBLIC_URL = env.str("FLAGSVC_PUBLIC_URL", default="")
CELERY_BEAT_SCHEDULE = {
    "advance-rollouts": {
        "task": "flags.advance_rollouts",
        "schedule": ROLLOUT_TICK_SECONDS,
        "options": {"expires": max(ROLLOUT_TICK_SECONDS, 1.0)},
    },
    # Guardrails (flags/guardrails/): every GUARDRAIL_TICK_SECONDS, each watched guardrail
    # asks Prometheus and acts once per breach; a rollout step waits for a fresh healthy check.
    "check-guardrails": {
        "task": "flags.check_guardrails",
        "schedule": GUARDRAIL_TICK_SECONDS,
        "options": {"expires": max(GUARDRAIL_TICK_SECONDS, 1.0)},
    },
    # Outbound webhooks (flags/webhooks/): deliveries whose queued retry was lost are re-queued.
    "sweep-webhooks": {
        "task": "flags.sweep_webhooks",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin login throttling (django-axes, database handler: shared by every replica). Failed
# logins count separately per client address (across usernames: password spraying) and
# per username (across addresses); at ADMIN_LOGIN_FAILURE_LIMIT either is locked out for
# ADMIN_LOGIN_COOLOFF_MINUTES (flagsvc/admin_login.py answers 429). A successful login
# before the limit resets the count. The address is REMOTE_ADDR only, never a header a
# client can forge (X-Forwarded-For).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_LOCKOUT_CALLABLE = "flagsvc.admin_login.lockout_response"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# The management API (flags/api, audit/api.py): admin tokens or staff sessions, JSON
# only, one error body; API_ADMIN_TOKEN_RATE limits requests per admin token
# (DRF rate syntax, e.g. 1200/minute; counted in the default cache). Trigger URLs: firings
# per trigger, and tries of unknown secrets per address (flags/api/triggers.py).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "flags.api.auth.BearerTokenAuthentication",
        "flags.api.auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["flags.api.permissions.AdminOnly"],
    "DEFAULT_PARSER_CLASSES": ["flags.api.http.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["flags.api.http.AdminTokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "admin_token": env.str("API_ADMIN_TOKEN_RATE", default="1200/minute"),
        "trigger_firing": "30/minute",
        "trigger_unknown": "60/minute",
    },
    "EXCEPTION_HANDLER": "flagsvc.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "flags.api.schema.ApiAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "flagsvc API",
    "DESCRIPTION": "Feature flags and kill switches: the management API (admin token or "
    "staff session), the SDK edge (server and client keys) and OFREP. Every error "
    'answers {"error": {"code", "message", "fields"}}.',
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_PATCH": True,
    # Request components of their own, so "may not be blank" is documented (minLength: 1).
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets sharing a field name ("action", "health") get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "TriggerActionEnum": ["kill", "restore"],
        "GuardrailActionEnum": ["pause", "step_back", "kill"],
        "GuardrailHealthEnum": ["unknown", "ok", "pending", "breach", "error", "no_data"],
        "GuardrailEvaluationHealthEnum": ["ok", "pending", "error", "no_data"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "flags.api.schema.postprocess_schema",
    ],
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# HTTPS in production: redirect plain HTTP, tell browsers to stay on HTTPS, and trust the
# TLS-terminating proxy's X-Forwarded-Proto when it sets one.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
# The header covers this host and its own subdomains only (e.g. *.flags.example.com).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/django$"]
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Peers whose X-Forwarded-For is believed (flagsvc.middleware.ClientAddressMiddleware);
# nobody's by default, so a client cannot choose the address the audit trail records.
try:
    TRUSTED_PROXIES = [
        ipaddress.ip_network(cidr, strict=False) for cidr in env.list("TRUSTED_PROXIES", default=[])
    ]
except ValueError as problem:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXIES: {problem}; give addresses or CIDR ranges, e.g. 10.0.0.0/8,127.0.0.1"
    ) from None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Trigger secrets are credentials: the loggers that write request paths redact them.
    "filters": {"trigger_secrets": {"()": "flagsvc.redaction.RedactTriggerSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["trigger_secrets"],
        }
    },
    "loggers": {
        **{
            name: {"filters": ["trigger_secrets"]}
            for name in ("django.request", "django.server", "uvicorn.access")
        },
        # Audit checkpoints are evidence kept outside the database: logged whatever LOG_LEVEL says.
        "audit.checkpoint": {"level": "INFO"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL")},
}
