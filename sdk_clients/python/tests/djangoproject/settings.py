"""A small Django project for the SDK's integration tests (kept apart from flagsvc's settings)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "flagsvc-sdk-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djangoproject.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "flagsvc_sdk.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "flagsvc_sdk.django.middleware.FlagsvcMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Offline: the bootstrap file is the whole truth; tests that need a server override FLAGSVC.
FLAGSVC = {
    "OFFLINE": True,
    "BOOTSTRAP": HERE / "bootstrap.json",
    "DEFAULTS": {"not-in-snapshot": True},
    "CONTEXT": "djangoproject.views.add_plan",
}
