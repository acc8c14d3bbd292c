def test_whoami_answers_for_a_valid_key(api_client):
    response = api_client.get("/api/v1/whoami")
    assert response.status_code == 200
    assert response.json()["consumer"] == "shop"
