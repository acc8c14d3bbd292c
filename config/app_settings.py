"""Each app's settings as one namespaced object with defaults, as DRF's `api_settings`.

    webhook_settings = AppSettings("WEBHOOK_", {"MAX_BODY_BYTES": 1024 * 1024, ...})
    webhook_settings.MAX_BODY_BYTES   # settings.WEBHOOK_MAX_BODY_BYTES if set, else the default

Flat, prefixed Django settings rather than one dict per app: a deployment sets one value
without restating the others, and `override_settings(WEBHOOK_MAX_BODY_BYTES=10)` changes one
in a test. Values are read when used, so an override applies at once. Environment variables
are read in config/env.py only; settings.py passes them on under these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings


class AppSettings:
    """An app's settings: attribute NAME is the Django setting PREFIX + NAME, or its default."""

    def __init__(self, prefix: str, defaults: Mapping[str, Any]):
        self._prefix = prefix
        self._defaults = dict(defaults)

    def __getattr__(self, name: str) -> Any:
        try:
            default = self._defaults[name]
        except KeyError:
            raise AttributeError(f"{self._prefix}{name} is not a setting of this app; it has: "
                                 f"{', '.join(self._prefix + n for n in sorted(self._defaults))}") from None
        return getattr(settings, self._prefix + name, default)

    def __dir__(self) -> list[str]:
        return sorted(self._defaults)

    def setting_name(self, name: str) -> str:
        """The Django setting behind `name`, for error messages that tell what to set."""
        if name not in self._defaults:
            raise AttributeError(name)
        return self._prefix + name
