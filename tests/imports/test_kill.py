"""Kill the import: `manage.py import_records` in its own process against the sandbox in its
own process, SIGKILLed at random points, then resumed: exactly the expected records, once."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db.models import Count

from imports.models import ImportJob, JobStatus, PartnerRecord
from sandbox import records as dataset
from tests.e2e.conftest import database_url
from tests.imports.conftest import API_KEY, SandboxControl, make_records_provider
from tests.support import processes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIMIT, PAGE = 5000, 500


@pytest.fixture
def sandbox_process(tmp_path) -> Iterator[processes.Process]:
    process = processes.start_http_service(
        "sandbox", lambda fd: processes.manage("run_sandbox", "--fd", str(fd)), ready_path="/_control/health",
        env={"SANDBOX_API_KEY": API_KEY}, log_dir=tmp_path)
    yield process
    process.stop()


def import_command(tmp_path, name: str, *args: str) -> processes.Process:
    env = {"DATABASE_URL": database_url(), "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS)}
    return processes.start(name, processes.manage("import_records", "partner", "--page-size", str(PAGE),
                                                  "--limit", str(LIMIT), *args), env=env, log_dir=tmp_path)


def committed_records() -> int:
    job = ImportJob.objects.first()
    return job.records if job else 0


def test_an_import_killed_at_random_points_resumes_with_no_gap_and_no_duplicate(sandbox_process, tmp_path):
    control = SandboxControl(sandbox_process.url)
    control.records(rate_limit=None)
    # A little latency per page, so kills land while pages are in flight and being written.
    control.faults({"faults": [{"action": "delay", "ms": 40, "count": 1000, "path": "/v1/records"}]})
    make_records_provider(sandbox_process.url)
    rng = random.Random()  # noqa: S311 - random kill points; the seed is in the failure message
    seed = rng.randrange(1_000_000)
    rng.seed(seed)

    kills = []
    for attempt in range(5):
        before = committed_records()
        if before >= LIMIT:
            break
        command = import_command(tmp_path, f"import-{attempt}")
        # Wait for a page or two past where it started (or for startup only, now and then).
        target = before + rng.choice([0, PAGE, 2 * PAGE])
        processes.wait_until(lambda c=command, t=target: committed_records() >= t or not c.alive(), timeout=60,
                             interval=0.005, what="import progress")
        time.sleep(rng.uniform(0, 0.12))
        command.signal(signal.SIGKILL)
        command.popen.wait(10)
        command.stop()
        kills.append((committed_records(), command.popen.returncode))

    assert any(0 < records < LIMIT and code == -signal.SIGKILL for records, code in kills), (seed, kills)

    # A kill can land after the last page (a loaded machine): then the job is done, and
    # another command would rightly start a new import rather than resume.
    resumed = ImportJob.objects.get().status != JobStatus.COMPLETED
    if resumed:
        final = import_command(tmp_path, "import-final")
        assert final.popen.wait(120) == 0, final.log()
        final.stop()

    job = ImportJob.objects.get()
    assert (job.status, job.records, job.pages) == (JobStatus.COMPLETED, LIMIT, LIMIT // PAGE), (seed, kills)
    rows = PartnerRecord.objects.order_by("external_id")
    assert rows.count() == LIMIT
    assert not rows.values("external_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert list(rows.values_list("external_id", flat=True)) == [f"rec_{n:07d}" for n in range(1, LIMIT + 1)]
    sample = rng.sample(range(1, LIMIT + 1), 20)
    for row in PartnerRecord.objects.filter(external_id__in=[f"rec_{n:07d}" for n in sample]):
        assert row.raw == dataset.record(int(row.external_id[4:]))
    if resumed:
        assert "Resuming import" in final.log()
