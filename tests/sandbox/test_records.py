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


# --- the partner's rate limit and record edits (POST /_control/records) ----------------------

def control_records(client, **body) -> dict:
    response = client.session.post(client.base_url + "/_control/records", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_answer_carries_the_rate_limit_headers_and_the_default_is_100_a_minute(client):
    first = client.get("/v1/records", params={"limit": 1})
    assert first.headers["X-RateLimit-Limit"] == "100"
    assert first.headers["X-RateLimit-Remaining"] == "99"
    assert first.headers["X-RateLimit-Reset"] == "0"
    refused = client.get("/v1/records", params={"limit": 0})  # a 400 counts, and says so too
    assert refused.status_code == 400 and refused.headers["X-RateLimit-Remaining"] == "98"


def test_over_the_limit_is_a_429_with_retry_after_and_nothing_left(client):
    control_records(client, rate_limit={"requests": 2, "period": 30})
    assert [client.get("/v1/records").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/v1/records")
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 29 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 29 <= int(refused.headers["X-RateLimit-Reset"]) <= 30
    counts = client.stats()["records"]
    assert (counts["requests"], counts["served"], counts["rate_limited"], counts["busiest_window"]) == (3, 2, 1, 2)


def test_the_window_slides_and_a_lifted_limit_sends_no_headers(client):
    control_records(client, rate_limit={"requests": 1, "period": 0.3})
    assert client.get("/v1/records").status_code == 200
    assert client.get("/v1/records").status_code == 429
    import time

    time.sleep(0.35)
    assert client.get("/v1/records").status_code == 200
    control_records(client, rate_limit=None)
    lifted = client.get("/v1/records")
    assert lifted.status_code == 200 and "X-RateLimit-Limit" not in lifted.headers
    assert client.stats()["records"]["rate_limit"] is None


def test_edited_records_change_while_cursors_handed_out_stay_valid(client):
    first = client.get("/v1/records", params={"limit": 2}).json()
    state = control_records(client, edit=[3, 3, 4])
    assert state["edited"] == 2
    page = client.get("/v1/records", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [r["revision"] for r in page["data"]] == [2, 1, 0]
    assert page["data"][0] == records.record(3, 2) != records.record(3)
    assert page["data"][0]["updated_at"] > records.record(3)["updated_at"]
    client.post("/_control/reset")
    assert client.get("/v1/records", params={"limit": 3}).json()["data"][2] == records.record(3)


def test_bad_control_bodies_change_nothing(client):
    for body in ({"edit": [0]}, {"edit": "3"}, {"rate_limit": {"requests": 0, "period": 1}}, {"other": 1},
                 {"edit": [5], "rate_limit": {"requests": 1}}):
        response = client.session.post(client.base_url + "/_control/records", json=body, timeout=10)
        assert response.status_code == 400, body
    assert client.stats()["records"]["edited"] == 0
    assert client.stats()["records"]["rate_limit"] == {"requests": 100, "period": 60.0}


def test_injected_faults_apply_to_records_too(client):
    client.faults({"faults": [{"action": "error", "status": 503, "path": "/v1/records"}]})
    assert client.get("/v1/records").status_code == 503
    assert client.get("/v1/records").status_code == 200
