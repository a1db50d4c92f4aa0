"""Repairs made by the watchdog (jobs.watchdog): the database is the source of truth."""

import logging
from datetime import datetime

from django.utils import timezone

from jobs.delivery import Outcome
from jobs.models import Job
from jobs.services.attempts import job_record_attempt
from jobs.services.common import audit, delete_rq_job, enqueue_delivery

logger = logging.getLogger(__name__)
WATCHDOG = "watchdog"


def job_recover_stalled(*, job_id, started_at: datetime, reason: str) -> Job | None:
    """Write off an attempt whose worker died or hung, and run the job again.

    Guarded on the attempt's start time, so an attempt that finished (or a new
    one that started) meanwhile is left alone. The lost attempt counts; when it
    was the last one the job fails and the failure webhook is sent.
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
    )
    will_retry = job.attempts < job.max_attempts
    job = job_record_attempt(job=job, outcome=lost, will_retry=will_retry)
    delete_rq_job(job)
    if will_retry:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.WAITING, scheduled_for=now
        )
        enqueue_delivery(job, delayed=False)
    logger.warning(
        "job %s: %s; %s", job.id, lost.error, "re-queued" if will_retry else "failed"
    )
    audit(WATCHDOG, "recover stalled", job=job, detail=reason)
    return job


def job_requeue_lost(*, job_id) -> Job | None:
    """Queue again a pending job that Redis no longer holds (flushed, restored)."""
    job = Job.objects.filter(
        pk=job_id, status__in=[Job.Status.WAITING, Job.Status.DELAYED]
    ).first()
    if job is None:
        return None
    delete_rq_job(job)
    enqueue_delivery(job, delayed=False)
    Job.objects.filter(pk=job.pk, status=job.status).update(status=Job.Status.WAITING)
    logger.warning("job %s was missing from Redis; re-queued", job.id)
    audit(WATCHDOG, "re-queue lost", job=job)
    return job
