"""Read-only figures for the dashboard, from the Job table (the source of truth)."""

import threading
import time
from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, F, Min
from django.db.models.functions import TruncMinute
from django.utils import timezone

from jobs.models import Job, JobAttempt

# Percentiles are taken over at most this many recent rows, so the page stays fast.
SAMPLE = 20_000


PENDING = [
    Job.Status.WAITING, Job.Status.DELAYED, Job.Status.PAUSED, Job.Status.ACTIVE,
]  # fmt: skip


def queue_counts(
    queue_names: list[str], finished_max_age_s: float = 0
) -> dict[str, dict[str, int]]:
    """Jobs per queue and status. Pending ones are counted every time; finished
    ones (most of a large table: counting 1,000,000 rows took 0.5-0.9 s on SQLite,
    bench/admin_pages.py) may come from this process's last count if it is at
    most `finished_max_age_s` old."""
    counts = {name: defaultdict(int) for name in queue_names}
    # Both columns given: counted on the (queue, status) index alone.
    pending = Job.objects.filter(queue__in=counts, status__in=PENDING)
    for row in [*_by_queue_and_status(pending), *_finished(finished_max_age_s)]:
        counts.setdefault(row["queue"], defaultdict(int))[row["status"]] = row["n"]
    return counts


def _by_queue_and_status(jobs) -> list[dict]:
    return list(jobs.values("queue", "status").annotate(n=Count("id")).order_by())


_finished_counts = {"at": float("-inf"), "rows": []}
_finished_lock = threading.Lock()


def _finished(max_age_s: float) -> list[dict]:
    with _finished_lock:
        if time.monotonic() - _finished_counts["at"] <= max_age_s:
            return _finished_counts["rows"]
    started = time.monotonic()
    rows = _by_queue_and_status(Job.objects.exclude(status__in=PENDING))
    with _finished_lock:
        _finished_counts.update(at=started, rows=rows)
    return rows


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def last_hour() -> dict:
    now = timezone.now()
    since = now - timedelta(hours=1)
    finished = Job.objects.filter(finished_at__gte=since)
    attempts = JobAttempt.objects.filter(started_at__gte=since).order_by("-started_at")
    durations = list(attempts.values_list("duration_ms", flat=True)[:SAMPLE])
    firsts = attempts.filter(number=1).values_list("started_at", "job__due_at")[:SAMPLE]
    lateness = [(started - due).total_seconds() * 1000 for started, due in firsts]
    oldest = Job.objects.filter(status=Job.Status.WAITING).aggregate(
        Min("scheduled_for")
    )
    oldest_due = oldest["scheduled_for__min"]
    return {
        "completed": finished.filter(status=Job.Status.COMPLETED).count(),
        "failed": finished.filter(status=Job.Status.FAILED).count(),
        "processing_p50_ms": percentile(durations, 0.5),
        "processing_p95_ms": percentile(durations, 0.95),
        "lateness_p50_ms": percentile(lateness, 0.5),
        "lateness_p95_ms": percentile(lateness, 0.95),
        "oldest_waiting_s": (now - oldest_due).total_seconds() if oldest_due else None,
    }


def per_worker_last_hour() -> dict[str, dict[str, int]]:
    """Completed and failed jobs of the last hour by the worker that ran their last
    attempt: the same rows as last_hour()'s figures."""
    since = timezone.now() - timedelta(hours=1)
    rows = (
        Job.objects.filter(
            status__in=[Job.Status.COMPLETED, Job.Status.FAILED], finished_at__gte=since
        )
        .values("worker", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts[row["worker"]][row["status"]] = row["n"]
    return counts


def chart(minutes: int = 60) -> dict:
    """Per minute over the last `minutes`: jobs completed and failed for good,
    attempts that failed and were retried, and the fire lateness (p50 / p95 ms) of
    first attempts. Lists aligned on `minutes` (epoch seconds, oldest first)."""
    now = timezone.now().replace(second=0, microsecond=0)
    since = now - timedelta(minutes=minutes - 1)
    slots = [since + timedelta(minutes=i) for i in range(minutes)]
    index = {slot: i for i, slot in enumerate(slots)}
    series = {key: [0] * minutes for key in ("completed", "failed", "retried")}
    finished = (
        Job.objects.filter(
            status__in=[Job.Status.COMPLETED, Job.Status.FAILED], finished_at__gte=since
        )
        .annotate(minute=TruncMinute("finished_at"))
        .values("minute", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in finished:
        if row["minute"] in index:
            series[row["status"]][index[row["minute"]]] = row["n"]
    # A failed attempt is a retry unless it was the last of a job failed for good.
    retried = (
        JobAttempt.objects.filter(started_at__gte=since, succeeded=False)
        .exclude(job__status=Job.Status.FAILED, number=F("job__attempts"))
        .annotate(minute=TruncMinute("started_at"))
        .values("minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in retried:
        if row["minute"] in index:
            series["retried"][index[row["minute"]]] = row["n"]
    late = [[] for _ in slots]
    firsts = JobAttempt.objects.filter(started_at__gte=since, number=1)
    for started, due in firsts.order_by("-started_at").values_list(
        "started_at", "job__due_at"
    )[:SAMPLE]:
        minute = started.replace(second=0, microsecond=0)
        if minute in index:
            late[index[minute]].append((started - due).total_seconds() * 1000)
    return {
        "minutes": [int(slot.timestamp()) for slot in slots],
        **series,
        "lateness_p50_ms": [percentile(values, 0.5) for values in late],
        "lateness_p95_ms": [percentile(values, 0.95) for values in late],
    }
