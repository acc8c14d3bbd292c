"""The OpenAPI schema at /api/schema/ says what the API does (schemathesis fuzzes against it)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

GETS = [("/api/v1/charges", "get"), ("/api/v1/charges/{charge_id}", "get"), ("/api/v1/whoami", "get")]
POSTS = [("/api/v1/charges", "post"), ("/api/v1/charges/{charge_id}/refunds", "post")]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def parameter(schema, path, method, name) -> dict:
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)


@pytest.mark.parametrize(("path", "method"), GETS + POSTS)
def test_every_operation_documents_401_in_the_error_shape(schema, path, method):
    answer = schema["paths"][path][method]["responses"]["401"]
    assert resolve(schema, answer["content"]["application/json"]["schema"])["properties"].keys() == {"error"}


def test_limit_is_an_integer_from_1_to_100(schema):
    limit = parameter(schema, "/api/v1/charges", "get", "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert "400" in schema["paths"]["/api/v1/charges"]["get"]["responses"]


@pytest.mark.parametrize(("path", "method"), POSTS)
def test_idempotency_key_is_a_required_header_of_1_to_255_characters(schema, path, method):
    key = parameter(schema, path, method, "Idempotency-Key")
    assert key["in"] == "header" and key["required"] is True
    assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}


@pytest.mark.parametrize("path", ["/api/v1/charges/{charge_id}", "/api/v1/charges/{charge_id}/refunds"])
def test_charge_id_has_the_shape_of_a_charge_id(schema, path):
    method = "get" if path.endswith("}") else "post"
    assert parameter(schema, path, method, "charge_id")["schema"]["pattern"] == "^ch_[0-9a-f]{24}$"
    assert "404" in schema["paths"][path][method]["responses"]


def test_currency_is_three_ascii_letters(schema):
    create = resolve(schema, {"$ref": "#/components/schemas/ChargeCreate"})
    assert create["properties"]["currency"]["pattern"] == "^[A-Za-z]{3}$"


@pytest.mark.parametrize("component", ["ChargeCreate", "Charge"])
def test_metadata_is_an_object_of_strings(schema, component):
    metadata = resolve(schema, {"$ref": f"#/components/schemas/{component}"})["properties"]["metadata"]
    assert metadata["type"] == "object"
    assert metadata["additionalProperties"] == {"type": "string", "maxLength": 500}
    assert metadata["maxProperties"] == 50


def test_amount_documents_its_bounds(schema):
    amount = resolve(schema, {"$ref": "#/components/schemas/ChargeCreate"})["properties"]["amount"]
    assert amount["type"] == "integer" and amount["minimum"] == 1 and amount["maximum"] == 99_999_999


def test_string_fields_document_what_the_serializer_refuses(schema):
    create = resolve(schema, {"$ref": "#/components/schemas/ChargeCreate"})["properties"]
    assert create["source"]["minLength"] == 1 and create["provider"]["minLength"] == 1
    assert create["description"]["type"] == "string" and "minLength" not in create["description"]
