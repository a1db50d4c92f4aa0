"""The watchdog: a periodic comparison of the Job table with Redis.

Run by every scheduler process (one pass at a time across them, by a Redis lock).
It repairs the two ways a job can silently stop:

- an attempt that is `active` but whose worker is gone (killed, OOM) or has been
  at it longer than JOB_STALL_TIMEOUT_MS: written off and run again;
- a pending job that is overdue and no longer in Redis (flushed, restored from an
  old snapshot, lost with a crashed scheduler): re-enqueued.

And when the Redis primary is not the one it last reconciled with (a Sentinel
failover, a restart, a flush: jobs.broker.primary), it compares every pending job
with the new one at once, whatever its due time: what replication lost is put
back from the moment the new primary is seen, each job for its own due time.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from jobs import broker, metrics, services
from jobs.models import Job
from jobs.services.chunks import PENDING

logger = logging.getLogger(__name__)

# Rows looked at per pass; a backlog is worked through over several passes.
BATCH = 1000


def run_pass() -> dict[str, int]:
    """One pass, unless another scheduler's watchdog holds the lock."""
    if not broker.take_watchdog_lock(uuid.uuid4().hex, settings.WATCHDOG_INTERVAL_MS):
        return {}
    close_old_connections()
    try:
        return {
            "reconciled": reconcile_new_primary(),
            "stalled": recover_stalled(),
            "lost": requeue_lost(),
        }
    finally:
        close_old_connections()


def reconcile_new_primary() -> int:
    """If the primary changed, re-place every pending job it does not hold;
    returns how many. Jobs created after it was seen were written to it."""
    run_id = broker.unreconciled_primary()
    if run_id is None:
        return 0
    seen = timezone.now()
    pending = list(
        Job.objects.filter(status__in=PENDING, created_at__lt=seen)
        .order_by("created_at")
        .values_list("id", "created_at")
    )
    # A job younger than the grace may belong to a request whose Redis write is
    # still failing: not sent before the grace, so a refused one is never sent.
    grace = timedelta(milliseconds=settings.WATCHDOG_GRACE_MS)
    requeued = 0
    for start in range(0, len(pending), BATCH):
        rows = pending[start : start + BATCH]
        gone = broker.unrunnable([str(job_id) for job_id, _ in rows])
        for (job_id, created_at), lost in zip(rows, gone, strict=True):
            if lost and services.job_requeue_lost(
                job_id=job_id, not_before=created_at + grace
            ):
                requeued += 1
    broker.mark_reconciled(run_id)
    logger.warning(
        "new Redis primary %s: %d pending job(s) compared, %d re-queued",
        run_id, len(pending), requeued,
    )  # fmt: skip
    return requeued


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
            status__in=PENDING,
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
