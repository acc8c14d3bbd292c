"""The one place that reads the process environment (see the design's configuration table)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state of a development checkout: the SQLite file, generated dev keys. Git-ignored.
VAR_DIR = Path(os.environ.get("SERVICE_VAR_DIR", BASE_DIR / "var"))

INSECURE_SECRET_KEY = "django-insecure-dev-only-never-use-in-production"  # noqa: S105


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 0 or 1, not {raw!r}.")


def _list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def get(name: str, default: str | None = None) -> str | None:
    """A raw variable, for the few settings that need no parsing."""
    return os.environ.get(name, default)


# Off unless asked for: a deploy that forgets the variable must not serve debug pages
# with the development secret key. `make run` and `make test` set it to 1.
DEBUG = _bool("DJANGO_DEBUG", False)
_DEV_HINT = " (For development on your own machine, set DJANGO_DEBUG=1 instead.)"


def secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if DEBUG:
        return key or INSECURE_SECRET_KEY
    if not key or key == INSECURE_SECRET_KEY or key.startswith("django-insecure") or len(key) < 32:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG=0 needs DJANGO_SECRET_KEY set to a random value of at least 32 "
            "characters (for example: python -c 'import secrets; print(secrets.token_urlsafe(50))')." + _DEV_HINT
        )
    return key


def allowed_hosts() -> list[str]:
    hosts = _list("DJANGO_ALLOWED_HOSTS")
    if DEBUG:
        return hosts or ["localhost", "127.0.0.1", "[::1]", "testserver"]
    if not hosts:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG=0 needs DJANGO_ALLOWED_HOSTS (comma-separated host names this "
            "service answers to, e.g. api.example.com)." + _DEV_HINT
        )
    return hosts


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"


def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or None


DEV_KEYS_FILE = VAR_DIR / "field_encryption_keys"


def field_encryption_keys() -> list[str]:
    """Fernet keys, newest first. In development they are generated once into a
    git-ignored file and reused, so a restart never makes stored secrets unreadable."""
    keys = _list("FIELD_ENCRYPTION_KEYS")
    if not keys and not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG=0 needs FIELD_ENCRYPTION_KEYS: comma-separated Fernet keys, newest "
            "first (generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')." + _DEV_HINT
        )
    if not keys:
        keys = _dev_keys()
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError) as err:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS item {index + 1} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from err
    return keys


def _dev_keys() -> list[str]:
    if DEV_KEYS_FILE.exists():
        return [k.strip() for k in DEV_KEYS_FILE.read_text().split(",") if k.strip()]
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(DEV_KEYS_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _dev_keys()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return [key]


def outbound_call_records() -> str | bool:
    """OUTBOUND_CALL_RECORDS: sync (default in development), batch (default in production) or off."""
    raw = (os.environ.get("OUTBOUND_CALL_RECORDS") or ("sync" if DEBUG else "batch")).strip().lower()
    if raw not in {"sync", "batch", "off"}:
        raise ImproperlyConfigured(f"OUTBOUND_CALL_RECORDS must be sync, batch or off, not {raw!r}.")
    return False if raw == "off" else raw


def _positive_int(name: str, default: int) -> int:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


def admin_login_failure_limit() -> int:
    """ADMIN_LOGIN_FAILURE_LIMIT: wrong passwords in a row (per user name and client
    address) before the admin login locks."""
    return _positive_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)


def admin_lockout() -> timedelta:
    """ADMIN_LOCKOUT_MINUTES: how long a locked admin login stays locked."""
    return timedelta(minutes=_positive_int("ADMIN_LOCKOUT_MINUTES", 15))


def sandbox_enabled() -> bool:
    """SANDBOX_ENABLED: install the sandbox provider app (its `run_sandbox` command).
    On in development, off in production unless asked for (a demo or chaos run)."""
    return _bool("SANDBOX_ENABLED", DEBUG)


def email_settings() -> dict:
    """EMAIL_SEND_DEADLINE (seconds an email may wait for its provider, default 24 h),
    EMAIL_KEEP_BODIES (keep bodies and addresses once sent, default 0) and
    EMAIL_DEFAULT_PROVIDER (slug), as the emails app's Django settings; only those set."""
    found = {}
    if os.environ.get("EMAIL_SEND_DEADLINE", "").strip():
        found["EMAIL_SEND_DEADLINE"] = _positive_int("EMAIL_SEND_DEADLINE", 24 * 3600)
    if os.environ.get("EMAIL_KEEP_BODIES", "").strip():
        found["EMAIL_KEEP_BODIES"] = _bool("EMAIL_KEEP_BODIES", False)
    if os.environ.get("EMAIL_DEFAULT_PROVIDER", "").strip():
        found["EMAIL_DEFAULT_PROVIDER"] = os.environ["EMAIL_DEFAULT_PROVIDER"].strip()
    return found
