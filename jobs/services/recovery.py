"""Repairs made by the watchdog (jobs.processes.watchdog): the database is the
source of truth, and Redis is made to match it."""

import logging
from datetime import datetime

from django.utils import timezone

from jobs import broker
from jobs.delivery import Outcome
from jobs.models import Job
from jobs.services.attempts import jobs_record_attempts
from jobs.services.audit import audit
from jobs.services.storing import placed, placement

logger = logging.getLogger(__name__)
WATCHDOG = "watchdog"


def job_recover_stalled(*, job_id, started_at: datetime, reason: str) -> Job | None:
    """Write off an attempt whose worker died or hung, and run the job again.

    Guarded on the attempt's start time, so an attempt that finished (or a new
    one that started) meanwhile is left alone. The lost attempt counts; when it
    was the last one the job fails and the failure webhook is sent. The retry
    waits for no backoff (the backend is not to blame), only for the workspace's
    rate limit.
    """
    now = timezone.now()
    taken = Job.objects.filter(
        pk=job_id, status=Job.Status.ACTIVE, started_at=started_at
    ).update(status=Job.Status.DELAYED)
    if not taken:
        return None
    job = Job.objects.get(pk=job_id)
    lost = Outcome(
        ok=False,
        http_status=None,
        error=f"attempt lost: {reason}",
        started_at=started_at,
        duration_ms=round((now - started_at).total_seconds() * 1000),
        lost=True,
    )
    decisions = jobs_record_attempts(results=[(job, lost)])
    retried = decisions[str(job.id)] != broker.FAILED
    if retried:
        if job.scheduled_for <= timezone.now():
            # No rate limit held it back: straight to its queue.
            Job.objects.filter(pk=job.pk, status=Job.Status.DELAYED).update(
                status=Job.Status.WAITING
            )
            job.status = Job.Status.WAITING
        broker.requeue([placement(job)])
    else:
        broker.unplace([placed(job)], delete=True)
    logger.warning(
        "job %s: %s; %s", job.id, lost.error, "re-queued" if retried else "failed"
    )
    audit(WATCHDOG, "recover stalled", job=job, detail=reason)
    return job


def job_requeue_lost(*, job_id, not_before: datetime | None = None) -> Job | None:
    """Queue again a pending job that Redis no longer holds (flushed, restored,
    lost in a failover): at once if due, else scheduled for its due time; never
    before `not_before`."""
    job = Job.objects.filter(
        pk=job_id, status__in=[Job.Status.WAITING, Job.Status.DELAYED]
    ).first()
    if job is None:
        return None
    due = max(job.scheduled_for, not_before or job.scheduled_for)
    later = due > timezone.now()
    status = Job.Status.DELAYED if later else Job.Status.WAITING
    Job.objects.filter(pk=job.pk, status=job.status).update(status=status)
    job.status = status
    at = due.timestamp() if later else None
    broker.requeue([broker.Placement(str(job.id), job.queue, at, job.workspace_id)])
    logger.warning("job %s was missing from Redis; re-queued", job.id)
    audit(WATCHDOG, "re-queue lost", job=job)
    return job
