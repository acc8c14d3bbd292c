#!/usr/bin/env python
"""`make test`: lint, then the suite on SQLite, then on PostgreSQL with Redis.

A stage whose service (or browser) is missing is reported loudly at the end with how
to enable it; under CI (CI=true) a stage that could not run is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/provider_gateway")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@dataclass
class Stage:
    name: str
    status: str = "not run"  # passed / failed / not run
    detail: str = ""
    seconds: float = 0.0
    how_to_enable: str = ""
    notes: list[str] = field(default_factory=list)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def postgres_ready() -> str | None:
    """None when PostgreSQL answers a query; else why not."""
    if not reachable("127.0.0.1", 5432):
        return "nothing listens on 127.0.0.1:5432"
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as err:  # noqa: BLE001 - reported to the user as is
        return f"cannot connect as postgres: {err}"
    return None


def redis_ready() -> str | None:
    if not reachable("127.0.0.1", 6379):
        return "nothing listens on 127.0.0.1:6379"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except Exception as err:  # noqa: BLE001
        return f"Redis did not answer PING: {err}"
    return None


def run(stage: Stage, cmd: list[str], env: dict[str, str]) -> None:
    print(f"\n===== {stage.name}: {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    stage.seconds = time.monotonic() - started
    # pytest exits 5 when it collected nothing: that is not a pass.
    stage.status = "passed" if code == 0 else "failed"
    stage.detail = "" if code == 0 else f"exit status {code}"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["DJANGO_DEBUG"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def main() -> int:
    pytest_args = sys.argv[1:]
    browser_missing = None if Path(CHROMIUM).exists() else f"{CHROMIUM} not found"
    pytest = [str(BIN / "pytest"), "-p", "no:cacheprovider"]

    lint = Stage("lint (ruff)")
    sqlite = Stage("suite on SQLite (ORM broker, database cache)")
    postgres = Stage("suite on PostgreSQL + Redis (broker and cache)",
                     how_to_enable="start PostgreSQL on 127.0.0.1:5432 (trust auth for user postgres) "
                                   "and Redis on 127.0.0.1:6379, then run make test again")
    fuzz = Stage("fuzz (schemathesis)")
    browser = Stage("admin browser test (Playwright + Chromium, on SQLite)",
                    how_to_enable="apt-get install chromium (or set CHROMIUM_PATH), then run make test again")
    stages = [lint, sqlite, postgres, fuzz, browser]

    run(lint, [str(BIN / "ruff"), "check", "."], base_env())
    run(sqlite, [*pytest, "-m", "not postgres and not browser and not fuzz", *pytest_args], base_env())

    missing = [m for m in (postgres_ready(), redis_ready()) if m]
    env = base_env()  # with PostgreSQL + Redis when both answer: the fuzz stage uses it either way
    if missing:
        postgres.detail = "; ".join(missing)
    else:
        env["DATABASE_URL"] = PG_URL
        env["REDIS_URL"] = REDIS_URL
        run(postgres, [*pytest, "-m", "not browser and not fuzz", *pytest_args], env)

    # The API against its own OpenAPI schema (tests/fuzz/): seeded and bounded, so it takes
    # well under a minute; FUZZ_MAX_EXAMPLES and FUZZ_SEED pass through for longer runs.
    fuzz.name += " on SQLite (no PostgreSQL + Redis)" if missing else " on PostgreSQL + Redis"
    run(fuzz, [*pytest, "-m", "fuzz", *pytest_args], env)

    if browser_missing:
        browser.detail = browser_missing
    else:
        run(browser, [*pytest, "-m", "browser", *pytest_args], base_env())

    print("\n===== summary")
    for stage in stages:
        line = f"{stage.status.upper():8} {stage.name}"
        if stage.seconds:
            line += f" ({stage.seconds:.0f}s)"
        if stage.detail:
            line += f": {stage.detail}"
        print(line)
    not_run = [s for s in stages if s.status == "not run"]
    if not_run:
        bar = "!" * 78
        print(f"\n{bar}")
        for stage in not_run:
            print(f"!! NOT RUN: {stage.name}\n!!   why: {stage.detail}\n!!   to enable: {stage.how_to_enable}")
        print(f"!! {'Under CI this is a failure.' if CI else 'The suite is NOT complete on this machine.'}")
        print(bar)
    failed = [s for s in stages if s.status == "failed"]
    if failed or (CI and not_run):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
