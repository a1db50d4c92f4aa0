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

from jobs import metrics, services
from jobs.models import Job
from jobs.scheduler import SCHEDULED_JOBS_KEY

logger = logging.getLogger(__name__)

LOCK_KEY = "queueservices:watchdog:lock"
ALIVE_PREFIX = "queueservices:worker-alive:"
# Rows looked at per pass; a backlog is worked through over several passes.
BATCH = 1000
# How far into a queue list to look for a queued job (the oldest are at its head).
LPOS_MAXLEN = 200_000


def worker_alive_key(worker: str) -> str:
    return ALIVE_PREFIX + worker


def run_pass(connection) -> dict[str, int]:
    """One pass, unless another scheduler's watchdog holds the lock."""
    token = uuid.uuid4().hex
    if not connection.set(LOCK_KEY, token, nx=True, px=settings.WATCHDOG_INTERVAL_MS):
        return {}
    close_old_connections()
    try:
        return {
            "stalled": recover_stalled(connection),
            "lost": requeue_lost(connection),
        }
    finally:
        close_old_connections()


def recover_stalled(connection) -> int:
    now = timezone.now()
    too_old = now - timedelta(milliseconds=settings.JOB_STALL_TIMEOUT_MS)
    active = list(
        Job.objects.filter(status=Job.Status.ACTIVE)
        .order_by("started_at")
        .values_list("id", "worker", "started_at")[:BATCH]
    )
    if not active:
        return 0
    with connection.pipeline(transaction=False) as pipe:
        for _, worker, _ in active:
            pipe.exists(worker_alive_key(worker))
        alive = pipe.execute()
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
        connection.hincrby(metrics.ATTEMPTS_KEY, "lost", recovered)
    return recovered


def requeue_lost(connection) -> int:
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
    with connection.pipeline(transaction=False) as pipe:
        for job_id in pending:
            pipe.hmget(f"rq:job:{job_id}", "status", "origin", "worker_name")
            pipe.zscore(SCHEDULED_JOBS_KEY, str(job_id))
        replies = pipe.execute()
    states = [
        (*fields, score)
        for fields, score in zip(replies[::2], replies[1::2], strict=True)
    ]
    lost = [
        job_id
        for job_id, gone in zip(
            pending, _gone(connection, pending, states), strict=True
        )
        if gone
    ]
    return sum(1 for job_id in lost if services.job_requeue_lost(job_id=job_id))


def _gone(connection, job_ids: list, states: list) -> list[bool]:
    """Whether nothing in Redis will ever run each job.

    Gone: no RQ job at all; scheduled but in no schedule; started by a worker that
    is no longer alive; queued but on no queue (popped by a worker that then died).
    """
    with connection.pipeline(transaction=False) as pipe:
        for job_id, (status, origin, worker, _) in zip(job_ids, states, strict=True):
            if status == b"started":
                pipe.exists(worker_alive_key((worker or b"").decode()))
            elif status == b"queued" and origin:
                pipe.lpos(
                    f"rq:queue:{origin.decode()}", str(job_id), maxlen=LPOS_MAXLEN
                )
            else:
                pipe.echo("")
        checks = pipe.execute()
    gone = []
    for (status, _, _, score), check in zip(states, checks, strict=True):
        if status is None:
            gone.append(True)
        elif status == b"scheduled":
            gone.append(score is None)
        elif status == b"started":
            gone.append(not check)
        elif status == b"queued":
            gone.append(check is None)
        else:
            gone.append(False)
    return gone
