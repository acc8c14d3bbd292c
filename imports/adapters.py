"""The records adapter interface: fetch one page of a partner's records, as dataclasses.

A kind offers records by naming an adapter class in its module:
`Kind(..., adapters={"records": CursorRecordsAdapter})`; the import job finds it with
`integrations.kinds.adapter_for(provider, "records")`. Adapters raise the client's errors
(`ProviderUnavailable`, `ProviderRejected`, `CredentialMissing`), as the payment adapters do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PartnerRecordData:
    external_id: str
    name: str
    email: str
    country: str
    updated_at: datetime | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class RecordPage:
    """One page: its records, the cursor of the next page (None: that was the last one) and
    the partner's total count when it says."""

    records: list[PartnerRecordData]
    next_cursor: str | None
    total: int | None = None


class RecordsAdapter:
    """What a partner exporting records must do: `fetch_page`. One adapter serves one job
    run and keeps its client (and the client's connection pool) for every page."""

    max_page_size = 1000

    def __init__(self, provider):
        self.provider = provider
        self._client = None

    @property
    def client(self):
        if self._client is None:
            # The client imports models: keep this lazy, as the payment adapters do.
            from integrations.client import ProviderClient

            self._client = ProviderClient(self.provider)
        return self._client

    def fetch_page(self, *, cursor: str | None, limit: int, deadline: float | None = None) -> RecordPage:
        """The page after `cursor` (the first when None), at most `limit` records. Anything
        but a readable page raises the client's ProviderError (see raise_for_error)."""
        raise NotImplementedError


class CursorRecordsAdapter(RecordsAdapter):
    """`GET /v1/records?limit=&cursor=` → `{"data": [...], "next_cursor": str|null}` (the
    sandbox's and the contract's shape), records `{id, name, email, country, updated_at}`."""

    path = "/v1/records"

    def fetch_page(self, *, cursor: str | None, limit: int, deadline: float | None = None) -> RecordPage:
        params: dict[str, Any] = {"limit": min(limit, self.max_page_size)}
        if cursor:
            params["cursor"] = cursor
        result = self.client.request("GET", self.path, params=params, operation="records.list",
                                     deadline=deadline).raise_for_error()
        body = result.data if isinstance(result.data, dict) else {}
        try:
            records = [self.record(item) for item in body["data"]]
        except (KeyError, TypeError, ValueError) as err:
            from integrations.errors import ProviderBadResponse

            result.message = f"unreadable records page: {err!r}"[:300]
            raise ProviderBadResponse(result) from err
        total = body.get("total_count")
        return RecordPage(records=records, next_cursor=body.get("next_cursor") or None,
                          total=total if isinstance(total, int) else None)

    @staticmethod
    def record(item: dict) -> PartnerRecordData:
        updated = item.get("updated_at")
        return PartnerRecordData(
            external_id=str(item["id"]),
            name=str(item.get("name") or "")[:300],
            email=str(item.get("email") or "")[:320],
            country=str(item.get("country") or "")[:2],
            updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) and updated else None,
            raw=item,
        )
