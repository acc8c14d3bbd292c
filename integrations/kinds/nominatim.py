"""OpenStreetMap Nominatim: geocoding (address verification) with its public search API.

`GET /search?format=jsonv2&addressdetails=1&limit=1&q=...` answers a JSON list, empty when
nothing matched. No credential; the usage policy asks for a descriptive User-Agent
(ADDRESSES_USER_AGENT) and at most one request a second, which a new nominatim provider
gets by default (with answers cached 7 days; docs/addresses.md).
The sandbox kind serves the same wire format and reuses `NominatimGeocoding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from integrations.client import ProviderClient
from integrations.errors import ProviderBadResponse, ProviderUnavailable
from integrations.kinds.base import Kind
from integrations.models import AuthScheme

GEOCODING = "geocoding"
# What a new nominatim provider starts with: the usage policy's 1 request/s; answers kept 7 days.
PROVIDER_DEFAULTS = {"rate_limit_requests": 1, "rate_limit_period": 1.0, "cache_ttl": 7 * 24 * 3600}


@dataclass(frozen=True)
class Place:
    """A geocoding answer at the adapter boundary: what the verify API calls `result`."""

    formatted: str
    lat: float
    lon: float
    components: dict[str, str] = field(default_factory=dict)
    provider: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"formatted": self.formatted, "lat": self.lat, "lon": self.lon,
                "components": dict(self.components), "provider": self.provider}


class NominatimGeocoding:
    """The geocoding adapter: `search(query)` is a Place, or None when nothing matched.

    Raises the client's ProviderUnavailable (with the call's result) when the provider gave
    no usable answer: any failed call (the client has already retried timeouts, connection
    errors, 408/429 and 5xx within the provider's deadline), or a 2xx that is not a list.
    """

    path = "/search"

    def __init__(self, provider, *, client: ProviderClient | None = None):
        self.provider = provider
        self.client = client or ProviderClient(provider)

    def search(self, query: str) -> Place | None:
        from addresses.conf import address_settings  # the app that owns the setting

        result = self.client.request(
            "GET", self.path, params={"format": "jsonv2", "addressdetails": "1", "limit": "1", "q": query},
            headers={"User-Agent": address_settings.USER_AGENT}, operation="geocoding.search")
        if not result.ok:
            raise ProviderUnavailable(result)
        if not isinstance(result.data, list):
            result.message = "geocoding answer is not a JSON list"
            raise ProviderBadResponse(result)
        if not result.data:
            return None
        return self.place(result.data[0], result)

    def place(self, item: Any, result) -> Place:
        """One jsonv2 search item as a Place (lat/lon arrive as strings)."""
        try:
            address = item.get("address") or {}
            return Place(formatted=str(item["display_name"]), lat=float(item["lat"]), lon=float(item["lon"]),
                         components={str(k): str(v) for k, v in address.items()}, provider=self.provider.slug)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            result.message = f"geocoding answer item unreadable: {err!r}"
            raise ProviderBadResponse(result) from err


KIND = Kind(
    name="nominatim",
    label="OpenStreetMap Nominatim",
    auth_scheme=AuthScheme.NONE,
    adapters={GEOCODING: NominatimGeocoding},
    provider_defaults=PROVIDER_DEFAULTS,
)
