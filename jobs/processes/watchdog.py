"""The watchdog: a periodic comparison of the Job table with Redis.

Run by every scheduler process (one pass at a time across them, by a Redis lock).
It repairs the two ways a job can silently stop:

- an attempt that is `active` but whose worker is gone (killed, OOM) or has been
  at it longer than JOB_STALL_TIMEOUT_MS: written off and run again;
- a pending job that is overdue and no longer in Redis (flushed, restored from an
  old snapshot, lost with a crashed scheduler): re-enqueued.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from jobs import broker, metrics, services
from jobs.models import Job

logger = logging.getLogger(__name__)

# Rows looked at per pass; a backlog is worked through over several passes.
BATCH = 1000


def run_pass() -> dict[str, int]:
    """One pass, unless another scheduler's watchdog holds the lock."""
    if not broker.take_watchdog_lock(uuid.uuid4().hex, settings.WATCHDOG_INTERVAL_MS):
        return {}
    close_old_connections()
    try:
        return {"stalled": recover_stalled(), "lost": requeue_lost()}
    finally:
        close_old_connections()


def recover_stalled() -> int:
    now = timezone.now()
    too_old = now - timedelta(milliseconds=settings.JOB_STALL_TIMEOUT_MS)
    active = list(
        Job.objects.filter(status=Job.Status.ACTIVE)
        .order_by("started_at")
        .values_list("id", "worker", "started_at")[:BATCH]
    )
    if not active:
        return 0
    alive = broker.alive([worker for _, worker, _ in active])
    recovered = 0
    for (job_id, worker, started_at), worker_alive in zip(active, alive, strict=True):
        if started_at < too_old:
            reason = f"still active after {settings.JOB_STALL_TIMEOUT_MS} ms"
        elif not worker_alive:
            reason = f"worker {worker or '?'} stopped during the callback"
        else:
            continue
        if services.job_recover_stalled(
            job_id=job_id, started_at=started_at, reason=reason
        ):
            recovered += 1
    if recovered:
        # Once per pass, not per job: lost attempts are rare and come in groups.
        tally = metrics.Tally()
        tally.count("lost", recovered)
        broker.write_counts(tally)
    return recovered


def requeue_lost() -> int:
    overdue = timezone.now() - timedelta(milliseconds=settings.WATCHDOG_GRACE_MS)
    pending = list(
        Job.objects.filter(
            status__in=[Job.Status.WAITING, Job.Status.DELAYED],
            scheduled_for__lt=overdue,
        )
        .order_by("scheduled_for")
        .values_list("id", flat=True)[:BATCH]
    )
    if not pending:
        return 0
    gone = broker.unrunnable([str(job_id) for job_id in pending])
    lost = [job_id for job_id, lost in zip(pending, gone, strict=True) if lost]
    return sum(1 for job_id in lost if services.job_requeue_lost(job_id=job_id))
