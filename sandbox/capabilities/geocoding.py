"""Geocoding: `GET /search`, Nominatim's search wire format with deterministic answers.

Answers come from a small built-in gazetteer plus generated addresses: "<n> Test Street,
Testville" (n from 1 to 99999) always resolves to the same place; anything else is `[]`,
as Nominatim answers an address it does not know. `/_control/stats` counts the requests
per normalised query and keeps their times, so tests can check single flight and rate limits.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque

from sandbox.capabilities.base import Capability
from sandbox.messages import SandboxRequest, SandboxResponse, invalid
from sandbox.routing import Route

LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. https://osm.org/copyright (sandbox)"
_GENERATED = re.compile(r"^(\d{1,5}) test street, testville$")
_TIMES_KEPT = 10_000  # request times kept for /_control/stats (a bounded window)

# (query as normalised, lat, lon, address components)
GAZETTEER = {
    "10 downing street, london": (51.5033635, -0.1276248, {
        "house_number": "10", "road": "Downing Street", "city": "London", "postcode": "SW1A 2AA",
        "country": "United Kingdom", "country_code": "gb"}),
    "1600 pennsylvania avenue nw, washington": (38.8976763, -77.0365298, {
        "house_number": "1600", "road": "Pennsylvania Avenue NW", "city": "Washington", "postcode": "20500",
        "country": "United States", "country_code": "us"}),
    "champ de mars, 5 avenue anatole france, paris": (48.8582602, 2.2944991, {
        "house_number": "5", "road": "Avenue Anatole France", "city": "Paris", "postcode": "75007",
        "country": "France", "country_code": "fr"}),
    "platz der republik 1, berlin": (52.5186202, 13.3761872, {
        "house_number": "1", "road": "Platz der Republik", "city": "Berlin", "postcode": "11011",
        "country": "Deutschland", "country_code": "de"}),
}


def normalise(query: str) -> str:
    """NFKC, case-folded, whitespace and commas collapsed (as the service does)."""
    text = unicodedata.normalize("NFKC", query).casefold()
    text = re.sub(r"[\s,]*,[\s,]*", ", ", text)
    return re.sub(r"\s+", " ", text).strip(" ,")


def lookup(query: str) -> dict | None:
    """The jsonv2 item for `query`, or None when the sandbox does not know the address."""
    key = normalise(query)
    if key in GAZETTEER:
        lat, lon, address = GAZETTEER[key]
        place_id = 100 + list(GAZETTEER).index(key)
    else:
        match = _GENERATED.match(key)
        if not match or int(match.group(1)) == 0:
            return None
        n = int(match.group(1))
        lat, lon, place_id = 50.0 + n / 100_000, 8.0 + n / 100_000, 1_000_000 + n
        address = {"house_number": str(n), "road": "Test Street", "city": "Testville", "postcode": "99999",
                   "country": "Sandboxia", "country_code": "zz"}
    display = ", ".join(address[k] for k in ("house_number", "road", "city", "postcode", "country"))
    return {
        "place_id": place_id, "licence": LICENCE, "osm_type": "node", "osm_id": place_id,
        "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "category": "place", "type": "house", "place_rank": 30,
        "importance": 0.5, "addresstype": "place", "name": "", "display_name": display, "address": address,
        "boundingbox": [f"{lat - 0.0001:.7f}", f"{lat + 0.0001:.7f}", f"{lon - 0.0001:.7f}", f"{lon + 0.0001:.7f}"],
    }


class Geocoding(Capability):
    """Stateless answers; the state is the request counts that tests read."""

    def routes(self) -> list[Route]:
        return [Route("GET", "/search", self.search)]

    def reset(self) -> None:
        self.by_query: dict[str, int] = {}
        self.times: deque[float] = deque(maxlen=_TIMES_KEPT)
        self.total = 0

    def stats(self) -> dict:
        return {"geocoding": {"total": self.total, "by_query": dict(self.by_query), "times": list(self.times)}}

    def search(self, request: SandboxRequest) -> SandboxResponse:
        query = request.query.get("q", "")
        if not query.strip():
            raise invalid("Nothing to search for: pass q.", param="q")
        if request.query.get("format", "xml") not in {"json", "jsonv2"}:
            raise invalid("The sandbox answers format=json or format=jsonv2 only.", param="format")
        with self.sandbox.lock:
            key = normalise(query)
            self.total += 1
            self.by_query[key] = self.by_query.get(key, 0) + 1
            self.times.append(self.sandbox.clock())
        item = lookup(query)
        if item is not None and request.query.get("addressdetails") != "1":
            item = {k: v for k, v in item.items() if k != "address"}
        return SandboxResponse(200, [item] if item else [])
