"""Page times of the Job admin, the dashboard and job-status with many jobs.

    .venv/bin/python bench/admin_pages.py --jobs 1000 100000 [--runs 7]

Each size gets a fresh database (SQLite in a temporary VAR_DIR unless DATABASE_URL
is set; PostgreSQL is then used as is, in a database of its own: set DATABASE_URL
to a scratch database). Rows are bulk-inserted (no Redis); every page is fetched
`runs` times through Django's test client as a staff user, and the median time and
the number of SQL queries are printed as a markdown table.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="qs-admin-bench-"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from jobs.models import Job, JobAttempt  # noqa: E402

STATUSES = ["completed"] * 80 + ["failed"] * 5 + ["delayed"] * 10 + ["waiting"] * 5


def fill(count: int) -> Job:
    """Insert `count` jobs (a campaign-like mix) and their attempts; return one."""
    Job.objects.all().delete()
    now = timezone.now()
    batch, attempts = [], []
    for i in range(count):
        status = STATUSES[i % len(STATUSES)]
        due = now - timedelta(seconds=count - i)
        job = Job(
            id=uuid.uuid4(),
            type="sms",
            queue="scheduled-sms-queue" if status == "delayed" else "send-sms-queue",
            workspace_id=f"ws-{i % 200}",
            contact_id=f"contact-{i}",
            recipient=f"+1555{i:07d}",
            campaign_id=f"campaign-{i % 50}",
            payload={"phoneNumber": f"+1555{i:07d}", "message": "x" * 300},
            metadata={"campaignId": f"campaign-{i % 50}", "messageId": f"m-{i}"},
            callback_url="http://localhost:4000/send-sms",
            status=status,
            attempts=1 if status in ("completed", "failed") else 0,
            max_attempts=5,
            last_error="HTTP 500: backend down" if status == "failed" else "",
            due_at=due,
            scheduled_for=due,
            finished_at=due if status in ("completed", "failed") else None,
        )
        batch.append(job)
        if job.attempts:
            attempts.append(
                JobAttempt(
                    job=job,
                    number=1,
                    started_at=due,
                    duration_ms=5,
                    http_status=200,
                    succeeded=status == "completed",
                )
            )
    Job.objects.bulk_create(batch, batch_size=2000)
    JobAttempt.objects.bulk_create(attempts, batch_size=2000)
    return batch[len(batch) // 2]


def measure(client: Client, url: str, runs: int, **headers) -> tuple[float, int]:
    times, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, **headers)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    return statistics.median(times), queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(
        username="bench", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(user)
    settings.ALLOWED_HOSTS = ["*"]
    results = {}
    for count in args.jobs:
        sample = fill(count)
        pages = {
            "admin job list": "/admin/jobs/job/",
            "admin, status=failed": "/admin/jobs/job/?status__exact=failed",
            "admin, search phone": f"/admin/jobs/job/?q={sample.recipient}",
            "admin, workspace filter": "/admin/jobs/job/?workspace=ws-17",
            "admin job page": f"/admin/jobs/job/{sample.id}/change/",
            "dashboard overview": "/admin/queues",
            "dashboard, failed list": "/admin/queues/jobs?status=failed",
            "dashboard, search campaign": "/admin/queues/jobs?q=campaign-7",
            "dashboard, by scheduled time": "/admin/queues/jobs?sort=scheduled",
            "dashboard, failed by finish": "/admin/queues/jobs?status=failed"
            "&sort=-finished",
            "dashboard, queue by created": "/admin/queues/jobs?queue=send-sms-queue",
            "GET /api/job-status": f"/api/job-status/{sample.id}",
        }
        results[count] = {
            name: measure(client, url, args.runs) for name, url in pages.items()
        }
    counts = list(results)
    header = " | ".join(f"{c:,} jobs: ms (queries)" for c in counts)
    print(f"| page | {header} |")
    print("|---|" + "---|" * len(counts))
    for name in results[counts[0]]:
        cells = " | ".join(
            f"{results[c][name][0]:.1f} ({results[c][name][1]})" for c in counts
        )
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
