"""Iterate over a provider's cursor-paginated listing, one page per client call."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

MAX_PAGE_SIZE = 100


def _default_next_cursor(body: Mapping[str, Any], items: list) -> str | None:
    """`next_cursor` in the body; or Stripe's style: `has_more` and the last item's id."""
    if body.get("next_cursor"):
        return body["next_cursor"]
    if body.get("has_more") and items and isinstance(items[-1], Mapping):
        return items[-1].get("id")
    return None


def paginate(client, path: str, *, params: Mapping[str, Any] | None = None, page_size: int = 100,
             max_page_size: int = MAX_PAGE_SIZE, limit_param: str = "limit",
             cursor_param: str | None = None, items_key: str = "data",
             next_cursor: Callable[[Mapping[str, Any], list], str | None] = _default_next_cursor,
             operation: str = "list", max_pages: int = 10_000) -> Iterator[Any]:
    """Yield every item of a cursor-paginated listing, fetching pages lazily.

    Page size is bounded by `max_page_size`. Each page is one `client.request` call, so the
    shared rate limit, retries and Retry-After on 429 apply to every page; a page that still
    fails raises the client's ProviderError (ProviderUnavailable for RATE_LIMITED), leaving
    the caller to resume later from the last item it saw. Stops when the next cursor is
    empty (or, defensively, repeats, or after `max_pages`).

    `cursor_param` names the query parameter the next cursor goes back in. By default it
    follows the body: an opaque `next_cursor` goes back as `cursor`, Stripe's
    `has_more` style as `starting_after` (the last item's id).
    """
    size = max(1, min(page_size, max_page_size))
    cursor: str | None = None
    seen: set[str] = set()
    param = cursor_param or "cursor"
    for _ in range(max_pages):
        query = {**(params or {}), limit_param: size}
        if cursor:
            query[param] = cursor
        result = client.request("GET", path, params=query, operation=operation).raise_for_error()
        body = result.data if isinstance(result.data, Mapping) else {}
        items = list(body.get(items_key) or [])
        yield from items
        cursor = next_cursor(body, items)
        if not cursor or cursor in seen:
            return
        seen.add(cursor)
        param = cursor_param or ("cursor" if body.get("next_cursor") else "starting_after")
