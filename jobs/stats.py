"""Read-only figures for the dashboard, from the Job table (the source of truth)."""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Min
from django.utils import timezone

from jobs.models import Job, JobAttempt

# Percentiles are taken over at most this many recent rows, so the page stays fast.
SAMPLE = 20_000


def queue_counts(queue_names: list[str]) -> dict[str, dict[str, int]]:
    counts = {name: defaultdict(int) for name in queue_names}
    rows = Job.objects.values("queue", "status").annotate(n=Count("id")).order_by()
    for row in rows:
        counts.setdefault(row["queue"], defaultdict(int))[row["status"]] = row["n"]
    return counts


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
