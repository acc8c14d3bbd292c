"""Cursor pagination over a provider listing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.client import ProviderClient, ProviderUnavailable
from integrations.pagination import paginate
from tests.support.local_server import LocalServer, Reply

ITEMS = [{"id": f"it_{n:03d}"} for n in range(1, 8)]


def listing(request, *, style="cursor"):
    query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
    limit = int(query["limit"])
    # Each style reads the cursor where such an API expects it.
    after = query.get("cursor" if style == "cursor" else "starting_after")
    start = 0 if not after else [i["id"] for i in ITEMS].index(after) + 1
    page = ITEMS[start:start + limit]
    more = start + limit < len(ITEMS)
    if style == "cursor":
        return Reply(200, json={"data": page, "next_cursor": page[-1]["id"] if more else ""})
    return Reply(200, json={"data": page, "has_more": more})


@pytest.mark.parametrize("style", ["cursor", "has_more"])
def test_iterates_every_page_until_the_cursor_is_empty(make_provider, style):
    with LocalServer(lambda r: listing(r, style=style)) as server:
        provider = make_provider(server.url)

        items = list(paginate(ProviderClient(provider), "/v1/items", page_size=3))

        assert items == ITEMS
        assert server.count == 3
        limits = {parse_qs(urlsplit(r.path).query)["limit"][0] for r in server.requests}
        assert limits == {"3"}


def test_page_size_is_bounded(make_provider):
    with LocalServer(lambda r: listing(r)) as server:
        provider = make_provider(server.url)
        list(paginate(ProviderClient(provider), "/v1/items", page_size=10_000, max_page_size=5))
        assert parse_qs(urlsplit(server.requests[0].path).query)["limit"] == ["5"]


def test_pages_are_fetched_lazily(make_provider):
    with LocalServer(lambda r: listing(r)) as server:
        provider = make_provider(server.url)
        iterator = paginate(ProviderClient(provider), "/v1/items", page_size=2)
        assert [next(iterator) for _ in range(2)] == ITEMS[:2]
        assert server.count == 1


def test_a_429_in_the_middle_is_waited_out(make_provider, fake_sleep):
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 2:
            return Reply(429, headers={"Retry-After": "1"})
        return listing(request)

    with LocalServer(handler) as server:
        provider = make_provider(server.url)
        items = list(paginate(ProviderClient(provider, sleep=fake_sleep), "/v1/items", page_size=3))
        assert items == ITEMS and fake_sleep.calls == [1.0] and server.count == 4


def test_a_page_that_keeps_failing_raises(make_provider):
    with LocalServer(lambda r: Reply(429, headers={"Retry-After": "120"})) as server:
        provider = make_provider(server.url)
        with pytest.raises(ProviderUnavailable) as err:
            list(paginate(ProviderClient(provider), "/v1/items"))
        assert err.value.result.error_code == "RATE_LIMITED" and err.value.result.retry_after == 120
        assert server.count == 1


def test_each_page_takes_a_rate_limit_token(make_provider, fake_sleep):
    with LocalServer(lambda r: listing(r)) as server:
        provider = make_provider(server.url, rate_limit_requests=1, rate_limit_period=60, deadline=2)
        with pytest.raises(ProviderUnavailable) as err:
            list(paginate(ProviderClient(provider, sleep=fake_sleep), "/v1/items", page_size=3))
        assert err.value.result.error_code == "RATE_LIMITED" and server.count == 1


def test_walks_the_sandbox_records_listing_across_pages(provider):
    """Against the project's own sandbox (an opaque `next_cursor` sent back as `cursor`)."""
    from itertools import islice

    from sandbox.api import Sandbox, SandboxConfig
    from sandbox.server import SandboxServer

    server = SandboxServer(Sandbox(SandboxConfig(api_key="sk_test_provider_secret_123")), port=0).start()
    try:
        provider.base_url = server.url
        provider.rate_limit_requests = 10_000
        provider.save()
        records = list(islice(paginate(ProviderClient(provider), "/v1/records", page_size=100), 350))
    finally:
        server.stop()
    ids = [record["id"] for record in records]
    assert len(ids) == 350 and len(set(ids)) == 350  # four pages, no repeats, no gaps
    assert ids == sorted(ids)
