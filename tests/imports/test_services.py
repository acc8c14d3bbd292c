"""Running an import against the real sandbox over HTTP: pages, cursor, upsert, limits, failures."""

from __future__ import annotations

import time

import pytest

from imports.models import ImportJob, JobStatus, PartnerRecord
from imports.services import import_job_cancel, import_job_for, import_job_run
from integrations.credentials import credential_rotate
from sandbox import records as dataset

pytestmark = pytest.mark.django_db


def run(provider, **kwargs):
    job, _ = import_job_for(provider=provider, **{k: kwargs.pop(k) for k in ("page_size", "limit", "restart")
                                                  if k in kwargs})
    return import_job_run(job_id=job.pk, **kwargs)


def stored(provider) -> dict[str, PartnerRecord]:
    return {r.external_id: r for r in PartnerRecord.objects.filter(provider=provider)}


def assert_exactly_the_first(provider, count: int) -> None:
    rows = stored(provider)
    assert len(rows) == PartnerRecord.objects.filter(provider=provider).count() == count
    assert sorted(rows) == [f"rec_{n:07d}" for n in range(1, count + 1)]


def test_an_import_brings_each_record_once_with_its_fields(partner, control):
    outcome = run(partner, page_size=500, limit=1200)

    job = ImportJob.objects.get()
    assert outcome.status == job.status == JobStatus.COMPLETED
    assert (job.records, job.pages, job.total, job.expected) == (1200, 3, 1_000_000, 1200)
    assert job.rate > 0 and job.last_error == "" and job.finished_at
    assert_exactly_the_first(partner, 1200)
    row, expected = stored(partner)["rec_0000777"], dataset.record(777)
    assert (row.name, row.email, row.country) == (expected["name"], expected["email"], expected["country"])
    assert row.updated_at.isoformat().replace("+00:00", "Z") == expected["updated_at"]
    assert row.raw == expected
    # The last page asked for 200, not 500: the limit is exact.
    assert control.stats()["records"]["served"] == 3


def test_a_cancelled_import_stops_before_its_next_page_and_resumes_from_its_cursor(partner, control):
    def cancel_after_first_page(job):
        if job.pages == 1:
            import_job_cancel(job=job)

    assert run(partner, page_size=300, limit=1000, on_page=cancel_after_first_page).status == JobStatus.CANCELLED
    job = ImportJob.objects.get()
    assert (job.status, job.records, job.pages) == (JobStatus.CANCELLED, 300, 1)
    assert control.stats()["records"]["served"] == 2  # the page in flight was fetched, never stored
    assert_exactly_the_first(partner, 300)

    again, created = import_job_for(provider=partner)
    assert (again.pk, created) == (job.pk, False)  # resumed, not restarted
    assert import_job_run(job_id=job.pk).status == JobStatus.COMPLETED
    assert_exactly_the_first(partner, 1000)
    assert ImportJob.objects.get().records == 1000


def test_changed_records_are_updated_by_the_next_import(partner, control):
    run(partner, page_size=500, limit=1000)
    before = stored(partner)
    control.records(edit=[3, 700, 700])

    assert run(partner, page_size=500, limit=1000, restart=True).status == JobStatus.COMPLETED

    after = stored(partner)
    assert len(after) == 1000
    for number, revision in ((3, 1), (700, 2)):
        external_id = f"rec_{number:07d}"
        assert after[external_id].name == dataset.record(number, revision)["name"] != before[external_id].name
        assert after[external_id].raw["revision"] == revision
        assert after[external_id].updated_at > before[external_id].updated_at
    assert after["rec_0000004"].raw == before["rec_0000004"].raw
    assert [j.status for j in ImportJob.objects.order_by("created")] == [JobStatus.COMPLETED] * 2


def test_a_cursor_handed_out_before_records_changed_still_continues_the_import(partner, control):
    def edit_ahead(job):
        if job.pages == 1:
            control.records(edit=[150, 250])

    run(partner, page_size=100, limit=300, on_page=edit_ahead)

    rows = stored(partner)
    assert len(rows) == 300
    assert rows["rec_0000150"].raw == dataset.record(150, 1)  # read after the edit
    assert rows["rec_0000050"].raw == dataset.record(50)


def test_a_429_pauses_the_import_for_its_retry_after(partner, control):
    control.faults({"faults": [{"action": "rate_limited", "retry_after": 2, "path": "/v1/records"}]})
    started = time.monotonic()

    assert run(partner, page_size=100, limit=200).status == JobStatus.COMPLETED

    assert time.monotonic() - started >= 2.0
    stats = control.stats()
    assert stats["faults_applied"] == {"rate_limited": 1}
    assert stats["records"]["served"] == 2
    assert_exactly_the_first(partner, 200)


def test_the_partners_limit_holds_through_its_headers_with_no_429(partner, control):
    """5 requests per 2 s at the partner, no client-side limit to speak of: the quota headers
    alone keep the import under the limit, counted in every 2-second window at the sandbox."""
    control.records(rate_limit={"requests": 5, "period": 2})
    started = time.monotonic()

    assert run(partner, page_size=10, limit=120).status == JobStatus.COMPLETED

    counts = control.stats()["records"]
    assert counts["served"] == 12 and counts["busiest_window"] <= 5
    assert counts["rate_limited"] == 0
    assert time.monotonic() - started >= 4.0  # 12 requests at 5 per 2 s: at least two resets
    assert_exactly_the_first(partner, 120)


def test_a_429_storm_still_imports_everything_within_the_limit(partner, control):
    """With the quota pause taken away, the sandbox's 429s + Retry-After alone pace the import."""
    control.records(rate_limit={"requests": 4, "period": 1})

    from integrations import ratelimit

    original = ratelimit.quota_wait
    ratelimit.quota_wait = lambda headers, **kw: None
    try:
        assert run(partner, page_size=10, limit=100).status == JobStatus.COMPLETED
    finally:
        ratelimit.quota_wait = original

    counts = control.stats()["records"]
    assert counts["served"] == 10 and counts["busiest_window"] <= 4
    assert_exactly_the_first(partner, 100)


def test_revoked_credentials_fail_the_job_which_resumes_from_its_cursor_once_fixed(partner, control, settings):
    settings.INTEGRATIONS_POLICY_REFRESH_SECONDS = 0  # the client re-reads its credential at once

    def revoke_after_first_page(job):
        if job.pages == 1:
            credential_rotate(provider=partner, purpose="api_key", value="sk_test_revoked")

    assert run(partner, page_size=100, limit=300, on_page=revoke_after_first_page).status == JobStatus.FAILED
    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED and job.last_error.startswith("HTTP_401: Invalid API Key")
    assert job.records == 100 and job.cursor

    credential_rotate(provider=partner, purpose="api_key", value="sk_test_imports_sandbox")
    assert import_job_run(job_id=job.pk).status == JobStatus.COMPLETED
    assert_exactly_the_first(partner, 300)
    assert ImportJob.objects.get().last_error == ""


def test_a_partner_gone_fails_the_job_after_its_retries(partner, control, settings):
    settings.IMPORTS_MAX_FAILURES = 2
    partner.max_attempts = 1
    partner.save()
    control.faults({"faults": [{"action": "error", "status": 503, "count": 10, "path": "/v1/records"}]})
    sleeps = []

    outcome = run(partner, page_size=100, limit=200, sleep=sleeps.append)

    assert outcome.status == JobStatus.FAILED
    job = ImportJob.objects.get()
    assert job.last_error.startswith("HTTP_503") and job.records == 0 and job.cursor == ""
    assert len(sleeps) == 1  # one backoff between the two failures


def test_a_task_slice_queues_the_job_again_with_its_cursor(partner, control, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    enqueued = []
    monkeypatch.setattr("imports.services._enqueue", enqueued.append)
    job, _ = import_job_for(provider=partner, page_size=100, limit=500)
    clock = iter(range(0, 1000, 10))

    with django_capture_on_commit_callbacks(execute=True):
        outcome = import_job_run(job_id=job.pk, claim_from=(JobStatus.QUEUED,), time_budget=25,
                                 clock=lambda: next(clock))

    job.refresh_from_db()
    assert outcome.status == job.status == JobStatus.QUEUED
    assert 0 < job.records < 500 and job.cursor and job.run_token == ""
    assert enqueued == [job.pk]
    # A task takes queued jobs only: one running (here: failed) elsewhere is left alone.
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    assert import_job_run(job_id=job.pk, claim_from=(JobStatus.QUEUED,)).status is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runners_of_one_job_at_once_write_every_page_exactly_once(sandbox_server, control):
    import threading

    from django.db import connection

    from tests.imports.conftest import make_records_provider

    provider = make_records_provider(sandbox_server.url)
    control.faults({"faults": [{"action": "delay", "ms": 20, "count": 1000, "path": "/v1/records"}]})
    job, _ = import_job_for(provider=provider, page_size=100, limit=3000)
    outcomes = []

    def runner():
        try:
            outcomes.append(import_job_run(job_id=job.pk).status)
        finally:
            connection.close()

    first = threading.Thread(target=runner)
    first.start()
    time.sleep(0.3)  # a few pages in; the second claims the job and the first must stop
    second = threading.Thread(target=runner)
    second.start()
    first.join(60)
    second.join(60)

    assert sorted(outcomes) == ["completed", "lost"]
    job.refresh_from_db()
    assert (job.status, job.records, job.pages) == (JobStatus.COMPLETED, 3000, 30)
    assert_exactly_the_first(provider, 3000)
