"""The deterministic 1,000,000-record dataset and its cursor pagination."""

from __future__ import annotations

from sandbox import records


def test_pages_follow_each_other_without_gaps_or_repeats(client):
    seen, cursor = [], None
    for _ in range(3):
        params = {"limit": 250, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/records", params=params).json()
        assert page["object"] == "list" and page["has_more"] is True
        seen.extend(r["number"] for r in page["data"])
        cursor = page["next_cursor"]
    assert seen == list(range(1, 751))


def test_records_are_the_same_on_every_read(client):
    first = client.get("/v1/records", params={"limit": 5}).json()["data"]
    again = client.get("/v1/records", params={"limit": 5}).json()["data"]
    assert first == again == [records.record(n) for n in range(1, 6)]
    assert first[0]["id"] == "rec_0000001" and first[0] != first[1]


def test_the_last_page_ends_at_one_million(client):
    page = client.get("/v1/records", params={"cursor": records.encode_cursor(999_998), "limit": 10}).json()
    assert [r["number"] for r in page["data"]] == [999_999, 1_000_000]
    assert page["has_more"] is False and page["next_cursor"] is None
    assert page["total_count"] == 1_000_000
    end = client.get("/v1/records", params={"cursor": records.encode_cursor(1_000_000)}).json()
    assert end["data"] == [] and end["has_more"] is False


def test_the_default_limit_is_100_and_the_maximum_1000(client):
    assert len(client.get("/v1/records").json()["data"]) == 100
    assert len(client.get("/v1/records", params={"limit": 1000}).json()["data"]) == 1000


def test_bad_limits_and_cursors_are_400s(client):
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"cursor": "garbage!"},
                   {"cursor": records.encode_cursor(1_000_001)}):
        response = client.get("/v1/records", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["param"] in {"limit", "cursor"}


def test_stripe_style_starting_after_continues_after_that_record(client):
    page = client.get("/v1/records", params={"starting_after": "rec_0000998", "limit": 3}).json()
    assert [r["id"] for r in page["data"]] == ["rec_0000999", "rec_0001000", "rec_0001001"]
    for params in ({"starting_after": "rec_x"}, {"starting_after": "rec_1000001"},
                   {"starting_after": "rec_0000001", "cursor": records.encode_cursor(1)}):
        assert client.get("/v1/records", params=params).status_code == 400, params
