"""POST/GET /api/v1/emails: the contract's JSON, validation, idempotency and pages."""

from __future__ import annotations

import pytest
from django.test import override_settings

from api.models import api_key_create
from emails.models import Email, EmailStatus
from idempotency.models import IdempotencyRecord

from .conftest import EMAIL, run_tasks

pytestmark = pytest.mark.django_db


def test_post_answers_202_with_the_queued_email_and_queues_one_task_by_id(post_email, tasks):
    response = post_email()

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "provider", "provider_message_id", "recipients", "subject", "metadata",
                         "events", "created"}
    assert body["id"].startswith("em_") and body["status"] == "queued" and body["provider"] == "fakemail"
    assert (body["recipients"], body["subject"], body["metadata"], body["events"]) == (1, "Your order",
                                                                                       {"order": "42"}, [])
    assert tasks == [("emails.tasks.send", (body["id"], tasks[0][1][1]), {"task_name": f"email {body['id']}"})]


def test_the_same_key_twice_is_one_email_and_one_send(post_email, tasks, outbox):
    first = post_email(key="k1")
    run_tasks(tasks)
    again = post_email(key="k1")

    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Email.objects.count() == 1 and len(outbox.calls) == 1 and tasks == []


def test_the_same_key_with_another_body_is_422(post_email):
    post_email(key="k2")
    other = post_email({**EMAIL, "subject": "Something else"}, key="k2")
    assert other.status_code == 422 and other.json()["error"]["type"] == "idempotency_key_reused"


def test_a_post_without_a_key_is_400_and_stores_nothing(post_email):
    response = post_email(key=False)
    assert response.status_code == 400 and response.json()["error"]["type"] == "idempotency_key_missing"
    assert not Email.objects.exists()


def test_to_cc_and_bcc_take_an_address_or_a_list_and_count_every_recipient(post_email, outbox, tasks):
    response = post_email({**EMAIL, "to": ["a@example.com", "b@example.com"], "cc": "c@example.com",
                           "bcc": ["d@example.com"], "html": "<p>hi</p>", "reply_to": "help@shop.example",
                           "from": "orders@shop.example"})
    assert response.status_code == 202 and response.json()["recipients"] == 4
    run_tasks(tasks)
    message = outbox.calls[0]
    assert (message.to, message.cc, message.bcc) == (("a@example.com", "b@example.com"), ("c@example.com",),
                                                     ("d@example.com",))
    assert (message.from_address, message.reply_to, message.html) == ("orders@shop.example", "help@shop.example",
                                                                      "<p>hi</p>")


def test_from_defaults_to_the_providers_sender(post_email, outbox, tasks):
    post_email()
    run_tasks(tasks)
    assert outbox.calls[0].from_address == "noreply@shop.example"


def test_without_from_and_without_a_configured_sender_it_is_400_from(post_email, outbox):
    outbox.default_from = ""
    response = post_email()
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "from" and not Email.objects.exists()


@pytest.mark.parametrize(("change", "param"), [
    ({"to": "not-an-address"}, "to.0"),
    ({"to": ["ok@example.com", "bad@"]}, "to.1"),
    ({"to": []}, "to"),
    ({"to": 5}, "to"),
    ({"to": "a@example.com\r\nBcc: x@example.com"}, "to.0"),
    ({"cc": ["x@example.com"] * 51}, "cc"),
    ({"to": ["t@example.com"] * 20, "cc": ["c@example.com"] * 20, "bcc": ["b@example.com"] * 11}, "to"),
    ({"from": "nobody"}, "from"),
    ({"reply_to": "nobody"}, "reply_to"),
    ({"subject": ""}, "subject"),
    ({"subject": "two\nlines"}, "subject"),
    ({"text": ""}, "text"),
    ({"text": 5}, "text"),
    ({"metadata": {"n": 1}}, "metadata"),
    ({"provider": "nope"}, "provider"),
])
def test_invalid_requests_are_400_naming_the_field(post_email, change, param):
    body = {**EMAIL, **change}
    response = post_email(body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request", param)
    assert not Email.objects.exists() and not IdempotencyRecord.objects.filter(response_status=400).exists()


def test_missing_subject_and_body_are_400(post_email):
    body = {"to": "ada@example.com"}
    assert post_email(body).json()["error"]["param"] == "subject"
    assert post_email({**body, "subject": "s"}).json()["error"]["param"] == "text"


def test_fifty_recipients_in_all_are_accepted(post_email):
    response = post_email({**EMAIL, "to": [f"t{i}@example.com" for i in range(30)],
                           "bcc": [f"b{i}@example.com" for i in range(20)]})
    assert response.status_code == 202 and response.json()["recipients"] == 50


def test_a_disabled_or_ambiguous_provider_is_400(post_email, mail_provider):
    mail_provider.enabled = False
    mail_provider.save()
    assert post_email().json()["error"]["param"] == "provider"
    assert post_email({**EMAIL, "provider": "fakemail"}).json()["error"]["message"].endswith("is disabled.")


@override_settings(EMAIL_DEFAULT_PROVIDER="fakemail")
def test_the_default_provider_setting_is_used(post_email):
    assert post_email().status_code == 202


def test_get_returns_the_email_and_only_to_its_consumer(post_email, api_client, mail_provider):
    created = post_email().json()
    assert api_client.get(f"/api/v1/emails/{created['id']}").json() == created

    _, other_key = api_key_create(consumer_name="other")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    response = api_client.get(f"/api/v1/emails/{created['id']}")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
    assert api_client.get("/api/v1/emails/em_nothex").status_code == 404


def test_list_pages_newest_first_and_filters_by_status(post_email, api_client, tasks):
    ids = [post_email().json()["id"] for _ in range(3)]
    Email.objects.filter(pk=ids[0]).update(status=EmailStatus.DELIVERED)

    page = api_client.get("/api/v1/emails?limit=2").json()
    assert [e["id"] for e in page["results"]] == ids[::-1][:2] and page["next"]
    rest = api_client.get(page["next"]).json()
    assert [e["id"] for e in rest["results"]] == [ids[0]] and rest["next"] is None

    delivered = api_client.get("/api/v1/emails?status=delivered").json()
    assert [e["id"] for e in delivered["results"]] == [ids[0]]
    bad = api_client.get("/api/v1/emails?status=lost")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"
    assert api_client.get("/api/v1/emails?cursor=zzz").json()["error"]["param"] == "cursor"


def test_the_openapi_schema_documents_the_email_operations(client):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    post = schema["paths"]["/api/v1/emails"]["post"]
    assert post["operationId"] == "emails_create" and "202" in post["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert "from" in schema["components"]["schemas"]["EmailCreate"]["properties"]
    assert schema["paths"]["/api/v1/emails/{email_id}"]["get"]["operationId"] == "emails_retrieve"
    assert {p["name"] for p in schema["paths"]["/api/v1/emails"]["get"]["parameters"]} >= {"status", "cursor"}


@pytest.mark.parametrize("subject", ["Hello\n", "Hello\r\nBcc: x@example.com", "\n"])
def test_a_subject_must_be_one_line_even_with_a_final_newline(subject, post_email):
    response = post_email({**EMAIL, "subject": subject})
    assert response.status_code == 400 and response.json()["error"]["param"] == "subject"
