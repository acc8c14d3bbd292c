"""Django settings. Every value that differs between machines comes from config/env.py."""

from __future__ import annotations

import dj_database_url

from config import env

BASE_DIR = env.BASE_DIR
DEBUG = env.DEBUG
SECRET_KEY = env.secret_key()
ALLOWED_HOSTS = env.allowed_hosts()
FIELD_ENCRYPTION_KEYS = env.field_encryption_keys()

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
    "django_q",
    "axes",
    "integrations",
    "api",
    "idempotency",
    "payments",
    "webhooks",
    "emails",
    "addresses",
    "imports",
]
# The local stand-in provider (`manage.py run_sandbox`): development, tests and demos only.
if env.sandbox_enabled():
    INSTALLED_APPS.append("sandbox")

MIDDLEWARE = [
    "config.request_id.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": dj_database_url.parse(env.database_url(), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    env.VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not :memory:, so processes started by end-to-end tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(env.VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        # Web, worker and sandbox share the file: wait for locks instead of failing, take
        # the write lock at BEGIN (no deadlock-prone upgrades), and let readers run during
        # writes (WAL).
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and task broker ------------------------------------------------------------
# Shared state (circuit breakers, rate limits, tokens) must be visible to every process:
# Redis when configured, otherwise the database cache (never the per-process locmem).
REDIS_URL = env.redis_url()
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pgw",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "service_cache",
        }
    }

Q_CLUSTER = {
    "name": "provider-gateway",
    "workers": int(env.get("Q_WORKERS", "2")),
    # A task running longer than `timeout` is killed; a task not acknowledged within
    # `retry` is handed out again (ORM broker). retry > timeout, or tasks run twice.
    "timeout": 60,
    "retry": 90,
    "max_attempts": 5,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Outbound calls ------------------------------------------------------------------
# Call records: inserted during the call in development (visible at once), by a background
# writer in production (no database commit on the call's path; rows appear within a second).
INTEGRATIONS_RECORD_CALLS = env.outbound_call_records()

# --- Email ----------------------------------------------------------------------------
# EMAIL_SEND_DEADLINE, EMAIL_KEEP_BODIES, EMAIL_DEFAULT_PROVIDER when set (emails/conf.py has
# the defaults). Not Django's own EMAIL_* (SMTP) settings, which this service does not use.
globals().update(env.email_settings())

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Provider gateway API",
    "DESCRIPTION": "Charges, refunds and provider integrations with idempotency keys.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the installed sidecar package, not a CDN: /api/docs/
    # works offline and behind strict egress rules.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security -------------------------------------------------------------------------
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.debug.AlwaysSafeExceptionReporterFilter"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.get("DJANGO_SECURE_COOKIES", "1") == "1"
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = [o for o in (env.get("DJANGO_CSRF_TRUSTED_ORIGINS") or "").split(",") if o]

# Admin login brute-force protection (django-axes): the backend refuses a locked-out
# (username, client address) pair before any password is checked. Attempts live in the
# database, so every web process sees them. The client address is REMOTE_ADDR only:
# trusting X-Forwarded-For here would let an attacker pick a fresh address per guess.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.admin_login_failure_limit()
AXES_COOLOFF_TIME = env.admin_lockout()
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Logging: one JSON object per line on stdout, each with the request id ------------
LOG_LEVEL = env.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_id.RequestIDLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # django-q logs every heartbeat at INFO; keep its warnings and errors.
        "django-q": {"level": env.get("Q_LOG_LEVEL", "WARNING")},
        # Its start-up banner on every command; login failures and lockouts (axes.*) stay.
        "axes.apps": {"level": "WARNING"},
    },
}
