"""Records: `GET /v1/records`, cursor pages over the deterministic dataset of sandbox/records.py."""

from __future__ import annotations

from sandbox import records as dataset
from sandbox.capabilities.base import Capability
from sandbox.messages import SandboxRequest, SandboxResponse, invalid
from sandbox.routing import Route


class Records(Capability):
    """A partner's bulk export; stateless (record n is always the same), so nothing to reset."""

    def routes(self) -> list[Route]:
        return [Route("GET", "/v1/records", self.records_list)]

    def records_list(self, request: SandboxRequest) -> SandboxResponse:
        raw_limit = request.query.get("limit") or str(dataset.DEFAULT_LIMIT)
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= dataset.MAX_LIMIT:
            raise invalid(f"limit must be an integer from 1 to {dataset.MAX_LIMIT}.", param="limit")
        cursor = request.query.get("cursor") or None
        starting_after = request.query.get("starting_after") or None
        if cursor and starting_after:
            raise invalid("Pass cursor or starting_after, not both.", param="cursor")
        try:
            page = dataset.page(cursor=cursor, limit=int(raw_limit), starting_after=starting_after)
        except dataset.CursorError as err:
            param = "cursor" if cursor else "starting_after"
            raise invalid(f"{param} is not one this API returned.", param=param) from err
        return SandboxResponse(200, page)
