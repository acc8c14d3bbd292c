#!/usr/bin/env python
"""The partner import against the sandbox: throughput with the limit lifted, pacing under it.

    .venv/bin/python bench/imports.py [--records 1000000] [--page-size 500]
    .venv/bin/python bench/imports.py --limited --pages 100
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/provider_gateway .venv/bin/python bench/imports.py

The sandbox runs in its own process (`manage.py run_sandbox`), so the CPU seconds counted
here (`time.process_time()` of this process) are the importer's alone. A throwaway test
database is created and dropped.

Lifted (default): the sandbox's records limit is lifted; first a bare script (requests
Session, one `executemany` INSERT and one commit per page, nothing else) and then the real
import (`imports.services.import_job_run`: outbound client, token bucket, quota headers,
upsert + cursor in one transaction, progress log) fetch the same `--records` records.
Reported: records/s and CPU seconds per 100,000 records for each; goal: import >= 0.5x bare.

Limited (`--limited`): the sandbox's real 100 requests/min and a provider bucket of one
request per 0.6 s; `--pages` pages. Goal: wall within 5 % of pages x 0.6 s, CPU < 5 % of wall.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from imports.models import ImportJob, PartnerRecord  # noqa: E402
from imports.services import import_job_for, import_job_run  # noqa: E402
from integrations.credentials import credential_rotate  # noqa: E402
from integrations.models import Provider  # noqa: E402
from tests.support import processes  # noqa: E402

API_KEY = "sk_test_bench_imports"


def start_sandbox(log_dir: Path) -> processes.Process:
    return processes.start_http_service(
        "sandbox", lambda fd: processes.manage("run_sandbox", "--fd", str(fd)), ready_path="/_control/health",
        env={"SANDBOX_API_KEY": API_KEY, "LOG_LEVEL": "WARNING"}, log_dir=log_dir)


def control(url: str, **body) -> dict:
    response = requests.post(f"{url}/_control/records", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def bare(url: str, records: int, page_size: int) -> tuple[float, float]:
    """Fetch and insert `records` records the bare way: (wall seconds, CPU seconds)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_bare (external_id varchar(100) PRIMARY KEY, name varchar(300), "
                       "email varchar(320), country varchar(2), updated_at varchar(40), raw text)")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    wall, cpu = time.perf_counter(), time.process_time()
    done, cursor_value = 0, None
    while done < records:
        params = {"limit": min(page_size, records - done), **({"cursor": cursor_value} if cursor_value else {})}
        page = session.get(f"{url}/v1/records", params=params, timeout=30).json()
        rows = [(r["id"], r["name"], r["email"], r["country"], r["updated_at"], json.dumps(r)) for r in page["data"]]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany("INSERT INTO bench_bare VALUES (%s, %s, %s, %s, %s, %s)", rows)
        done += len(rows)
        cursor_value = page["next_cursor"]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM bench_bare")
        assert cursor.fetchone()[0] == records
    return wall, cpu


def ours(provider: Provider, records: int, page_size: int) -> tuple[float, float, ImportJob]:
    job, _ = import_job_for(provider=provider, page_size=page_size, limit=records, restart=True)
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = import_job_run(job_id=job.pk)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert outcome.status == "completed", outcome
    assert PartnerRecord.objects.filter(provider=provider).count() == records
    return wall, cpu, outcome.job


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--limited", action="store_true", help="under the sandbox's 100 requests/min")
    parser.add_argument("--pages", type=int, default=100, help="pages of the --limited run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp / "bench.sqlite3")  # a file, as in production
    else:  # its own database: never another run's test database
        db.setdefault("TEST", {})["NAME"] = f"bench_imports_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    sandbox = start_sandbox(tmp)
    try:
        print(f"database: {connection.vendor}; page size {args.page_size}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        if args.limited:
            # Smooth pacing: the bucket's own rate is the partner's, with no burst.
            provider = Provider.objects.create(slug="partner", name="Partner", kind="sandbox", base_url=sandbox.url,
                                               rate_limit_requests=1, rate_limit_period=0.6)
            credential_rotate(provider=provider, purpose="api_key", value=API_KEY)
            records = args.pages * args.page_size
            wall, cpu, job = ours(provider, records, args.page_size)
            stats = requests.get(f"{sandbox.url}/_control/stats", timeout=10).json()["records"]
            bound = args.pages * 0.6
            print(f"limited: {args.pages} pages in {wall:.1f} s (bound {bound:.1f} s: {wall / bound - 1:+.1%}); "
                  f"CPU {cpu:.2f} s = {cpu / wall:.1%} of wall; sandbox: {stats['served']} served, "
                  f"{stats['rate_limited']} x 429, busiest 60 s window {stats['busiest_window']}")
            return 0

        control(sandbox.url, rate_limit=None)
        provider = Provider.objects.create(slug="partner", name="Partner", kind="sandbox", base_url=sandbox.url,
                                           rate_limit_requests=1_000_000, rate_limit_period=1.0)
        credential_rotate(provider=provider, purpose="api_key", value=API_KEY)
        per = 100_000 / args.records
        b_wall, b_cpu = bare(sandbox.url, args.records, args.page_size)
        print(f"bare:   {args.records:,} records in {b_wall:.1f} s = {args.records / b_wall:,.0f} records/s; "
              f"CPU {b_cpu * per:.2f} s per 100,000")
        o_wall, o_cpu, _ = ours(provider, args.records, args.page_size)
        print(f"import: {args.records:,} records in {o_wall:.1f} s = {args.records / o_wall:,.0f} records/s; "
              f"CPU {o_cpu * per:.2f} s per 100,000")
        print(f"import / bare rate: {b_wall / o_wall:.2f}x (goal >= 0.5x)")
        return 0
    finally:
        sandbox.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
