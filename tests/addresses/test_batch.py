"""Batch verification: the API, deduplication, paging, failures, the sweeper and a killed worker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from addresses import services
from addresses.models import BatchJob, BatchLookup, JobStatus
from addresses.normalize import normalize_address
from api.models import Consumer
from integrations.models import Provider
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
BATCH = "/api/v1/addresses/verify-batch"


@pytest.fixture
def enqueued(monkeypatch) -> list[str]:
    """Jobs the API enqueued (the tests run them with batch_run, as the worker would)."""
    jobs: list[str] = []
    monkeypatch.setattr(services, "batch_enqueue", lambda *, job_id: jobs.append(job_id))
    return jobs


def addresses_with_repeats(total: int, repeat_share: float, seed: int = 13) -> list[str]:
    """`total` addresses, `repeat_share` of them repeats of earlier ones, spelled differently;
    every 10th distinct address is one the sandbox does not know."""
    rng = random.Random(seed)
    distinct = round(total * (1 - repeat_share))
    originals = [f"{n} Nowhere Road, Atlantis" if n % 10 == 0 else f"{n} Test Street, Testville"
                 for n in range(1, distinct + 1)]
    out = list(originals)
    for _ in range(total - distinct):
        again = rng.choice(originals)
        out.insert(rng.randrange(len(out) + 1), "  " + again.upper().replace(", ", " ,  "))
    return out


def all_results(api_client, job_id: str, limit: int = 100) -> list[dict]:
    url, results = f"{BATCH}/{job_id}/results?limit={limit}", []
    while url:
        page = api_client.get(url)
        assert page.status_code == 200, page.content
        results += page.json()["results"]
        url = page.json()["next"]
    return results


def check_results(results: list[dict], sent: list[str]) -> None:
    """Every input line present once, in order, with the answer its address should have."""
    assert [r["position"] for r in results] == list(range(len(sent)))
    assert [r["query"] for r in results] == sent
    for result in results:
        assert result["status"] == "done"
        assert result["normalized"] == normalize_address(result["query"])
        assert result["found"] == ("nowhere" not in result["normalized"])
        if result["found"]:
            number = result["normalized"].split()[0]
            assert result["result"]["components"]["house_number"] == number


@pytest.mark.django_db
def test_create_dedupe_run_and_page_in_input_order(api_client, sandbox, enqueued,
                                                   django_capture_on_commit_callbacks):
    sent = ["1 Test Street, Testville", "2 Nowhere Road", " 1 TEST street ,testville", "3 Test Street, Testville"]
    with django_capture_on_commit_callbacks(execute=True):  # enqueued once the job is committed
        created = api_client.post(BATCH, {"addresses": sent}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert created.status_code == 202, created.content
    job = created.json()
    assert job["id"].startswith("avb_") and (job["status"], job["total"], job["done"], job["unique"]) == (
        "queued", 4, 0, 3)
    assert enqueued == [job["id"]]
    again = api_client.post(BATCH, {"addresses": sent}, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == job["id"]
    assert BatchJob.objects.count() == 1

    pending = api_client.get(f"{BATCH}/{job['id']}/results").json()["results"]
    assert [r["status"] for r in pending] == ["pending"] * 4

    services.batch_run(job_id=job["id"])
    detail = api_client.get(f"{BATCH}/{job['id']}").json()
    assert (detail["status"], detail["done"]) == ("completed", 4)
    results = all_results(api_client, job["id"], limit=3)
    assert [r["found"] for r in results] == [True, False, True, True]
    assert results[2]["result"] == results[0]["result"]
    assert sandbox.stats()["total"] == 3  # the repeat was fetched once


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "param"), [
    ({"addresses": []}, "addresses"), ({"addresses": ["ok", " "]}, "addresses.1"),
    ({"addresses": ["x" * 501]}, "addresses.0"), ({}, "addresses"),
    ({"addresses": ["x"] * 10_001}, "addresses"),
])
def test_bad_batches_are_400s(api_client, provider, body, param):
    response = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY=f"bad-{param}")
    assert response.status_code == 400 and response.json()["error"]["param"] == param


@pytest.mark.django_db
def test_jobs_of_another_consumer_and_forged_cursors(api_client, provider, enqueued):
    other = Consumer.objects.create(name="other")
    job = services.batch_create(consumer=other, provider=provider, addresses=["a"])
    assert api_client.get(f"{BATCH}/{job.id}").status_code == 404
    assert api_client.get(f"{BATCH}/{job.id}/results").status_code == 404
    assert api_client.get(f"{BATCH}/avb_nothex").status_code == 404
    mine = api_client.post(BATCH, {"addresses": ["a"]}, format="json", HTTP_IDEMPOTENCY_KEY="c").json()
    for cursor in ("garbage", "cDEy\x00", "eDE="):
        response = api_client.get(f"{BATCH}/{mine['id']}/results", {"cursor": cursor})
        assert response.status_code == 400 and response.json()["error"]["param"] == "cursor"
    assert api_client.get(f"{BATCH}/{mine['id']}/results", {"limit": "0"}).status_code == 400


@pytest.mark.django_db
def test_an_outage_pauses_the_job_and_the_sweeper_resumes_it(sandbox, provider, api_key, enqueued, settings):
    consumer = Consumer.objects.get()
    job = services.batch_create(consumer=consumer, provider=provider,
                                addresses=["1 Test Street, Testville", "2 Test Street, Testville"])
    settings.ADDRESSES_FAILED_HOLD_SECONDS = 0  # the rerun below comes at once, not after the sweeper
    sandbox.faults({"faults": [{"action": "delay", "ms": 0, "path": "/search"},
                               {"action": "error", "status": 503, "count": 2, "path": "/search"}]})
    job = services.batch_run(job_id=job.id)
    assert (job.status, job.done, job.failed_runs) == (JobStatus.QUEUED, 1, 1)
    assert "HTTP_503" in job.last_error or job.last_error
    assert services.batch_sweep() == []  # not stale yet
    enqueued.clear()
    assert services.batch_sweep(now=timezone.now() + timedelta(seconds=121)) == [job.id]
    assert enqueued == [job.id]
    job = services.batch_run(job_id=job.id)
    assert (job.status, job.done) == (JobStatus.COMPLETED, 2)


@pytest.mark.django_db
def test_repeated_outages_fail_the_job_and_cancel_stops_one(sandbox, provider, api_key, enqueued, settings):
    settings.ADDRESSES_BATCH_MAX_ATTEMPTS = 2
    settings.ADDRESSES_FAILED_HOLD_SECONDS = 0
    consumer = Consumer.objects.get()
    sandbox.faults({"faults": [{"action": "error", "status": 503, "count": 100, "path": "/search"}]})
    job = services.batch_create(consumer=consumer, provider=provider, addresses=["1 Test Street, Testville"])
    assert services.batch_run(job_id=job.id).status == JobStatus.QUEUED
    assert services.batch_run(job_id=job.id).status == JobStatus.FAILED

    other = services.batch_create(consumer=consumer, provider=provider, addresses=["a", "b"])
    assert services.batch_cancel(job_id=other.id)
    assert services.batch_run(job_id=other.id).status == JobStatus.CANCELLED
    assert not services.batch_cancel(job_id=other.id)


# The doomed worker: runs a job as the django-q2 task does, until killed.
WORKER = """
import sys, django
django.setup()
from addresses.tasks import run_batch
run_batch(sys.argv[1])
"""


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_resumes_and_every_result_is_present_once_in_order(api_client, sandbox, provider,
                                                                           enqueued, tmp_path):
    sent = addresses_with_repeats(1000, 0.30)
    created = api_client.post(BATCH, {"addresses": sent}, format="json", HTTP_IDEMPOTENCY_KEY="big")
    job_id = created.json()["id"]
    assert created.json()["unique"] == 700
    # A little latency per lookup, so the kill lands mid-way.
    sandbox.faults({"faults": [{"action": "delay", "ms": 5, "count": 10_000, "path": "/search"}]})

    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    log = tmp_path / "worker.log"
    # Output to a file: its JSON logs would fill a pipe nobody reads and stall it.
    with log.open("w") as out:
        worker = subprocess.Popen([sys.executable, "-c", WORKER, job_id], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_until(lambda: BatchJob.objects.get(pk=job_id).lookups_done >= 200, timeout=15,
                       interval=0.01, what="the worker to store 200 lookups")
        except TimeoutError as err:
            raise AssertionError(log.read_text()[-3000:]) from err
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)

    killed = BatchJob.objects.get(pk=job_id)
    assert killed.status == JobStatus.RUNNING and 200 <= killed.lookups_done < 700
    stored_before = set(BatchLookup.objects.filter(job_id=job_id, done=True).values_list("normalized", flat=True))
    fetched_before = sandbox.stats()["by_query"]

    # The sweeper sees the silent job and hands it to a worker again (here: in process).
    later = killed.heartbeat + timedelta(seconds=121)
    assert services.batch_sweep(now=later) == [job_id]
    job = services.batch_run(job_id=job_id)
    assert (job.status, job.done, job.lookups_done, job.runs) == (JobStatus.COMPLETED, 1000, 700, 2)

    check_results(all_results(api_client, job_id, limit=97), sent)
    by_query = sandbox.stats()["by_query"]
    assert set(by_query) == {normalize_address(a) for a in sent}
    assert not any(by_query[q] > fetched_before[q] for q in stored_before)  # stored: never fetched again
    # At most the one lookup in flight at the kill was asked twice (its answer was cached, not stored).
    assert sum(by_query.values()) - 700 <= 1


@pytest.mark.django_db
def test_the_batch_stays_within_the_providers_rate_limit(sandbox, provider, api_key, enqueued):
    Provider.objects.filter(pk=provider.pk).update(rate_limit_requests=5, rate_limit_period=1.0, deadline=10.0)
    consumer = Consumer.objects.get()
    job = services.batch_create(consumer=consumer, provider=Provider.objects.get(pk=provider.pk),
                                addresses=[f"{n} Test Street, Testville" for n in range(1, 16)])
    started = time.monotonic()
    assert services.batch_run(job_id=job.id).status == JobStatus.COMPLETED
    times = sorted(sandbox.stats()["times"])
    assert len(times) == 15
    # A token bucket of 5 a second: a burst of 5, then one every 0.2 s.
    assert times[-1] - times[0] >= (15 - 5) / 5 - 0.05
    assert all(sum(1 for t in times if start <= t < start + 1.0) <= 5 + 5 for start in times)
    assert time.monotonic() - started >= 1.9


@pytest.mark.django_db
def test_progress_is_in_metrics_and_the_sweeper_is_scheduled(client, provider, api_key, enqueued):
    from django_q.models import Schedule

    services.batch_create(consumer=Consumer.objects.get(), provider=provider, addresses=["a", "b", "a"])
    text = client.get("/metrics").content.decode()
    assert 'address_batch_jobs{status="queued"} 1.0' in text
    assert "address_batch_open_total 3.0" in text
    assert Schedule.objects.get(name="addresses.sweep").func == "addresses.tasks.sweep"
