"""The only code that changes a Job's status or talks to the queues."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Retry

from jobs.delivery import Outcome, callback_url
from jobs.models import Job, JobAttempt
from jobs.queues import get_queue, get_scheduler, queue_name_for

PENDING = [Job.Status.WAITING, Job.Status.DELAYED, Job.Status.ACTIVE]


class QueueUnavailable(Exception):
    """Redis could not be reached; nothing was scheduled."""


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based): base x 2^(n-1)."""
    return settings.JOB_BACKOFF_MS * 2 ** (attempt - 1) / 1000


def rq_job_timeout() -> int:
    # One callback plus one failure webhook, with room to record both.
    return int(2 * settings.CALLBACK_TIMEOUT_MS / 1000) + 30


def job_schedule(*, job_type: str, payload: dict, delay_ms: int) -> Job:
    """Record a job, then hand it to RQ (now) or the scheduler (delay_ms > 0).

    The row is committed before Redis sees the job, so a worker never meets an
    uncommitted row; if Redis refuses, the row is removed and nothing is sent.
    """
    metadata = payload.get("metadata") or {}
    now = timezone.now()
    job = Job(
        id=uuid.uuid4(),
        type=job_type,
        queue=queue_name_for(job_type, delayed=delay_ms > 0),
        workspace_id=str(payload["workspaceId"]),
        contact_id=str(payload["contactId"]),
        payload=payload,
        metadata=metadata,
        callback_url=callback_url(job_type, metadata),
        status=Job.Status.DELAYED if delay_ms > 0 else Job.Status.WAITING,
        max_attempts=settings.JOB_ATTEMPTS,
        scheduled_for=now + timedelta(milliseconds=delay_ms),
    )
    # durable: refuse to run inside an outer transaction that could still roll back.
    with transaction.atomic(durable=True):
        job.save(force_insert=True)
    try:
        _enqueue(job, delayed=delay_ms > 0)
    except RedisError as exc:
        Job.objects.filter(pk=job.pk).delete()
        raise QueueUnavailable(str(exc)) from exc
    return job


def _enqueue(job: Job, *, delayed: bool) -> None:
    options = {
        "job_id": str(job.id),
        "timeout": rq_job_timeout(),
        "retry": _retry_policy(job.max_attempts),
    }
    if delayed:
        get_scheduler().enqueue_at(
            job.scheduled_for,
            "jobs.tasks.deliver",
            str(job.id),
            queue_name=job.queue,
            **options,
        )
    else:
        get_queue(job.queue).enqueue_call(
            "jobs.tasks.deliver", args=(str(job.id),), **options
        )


def _retry_policy(max_attempts: int) -> Retry | None:
    if max_attempts < 2:
        return None
    return Retry(
        max=max_attempts - 1,
        interval=[backoff_seconds(n) for n in range(1, max_attempts)],
    )


def job_start_attempt(*, job_id: str) -> Job | None:
    """Mark the job active and count the attempt.

    Returns None when the job must not be delivered: unknown, cancelled, or
    already completed (a redelivery after a worker crash).
    """
    started = Job.objects.filter(pk=job_id, status__in=PENDING).update(
        status=Job.Status.ACTIVE, attempts=F("attempts") + 1, started_at=timezone.now()
    )
    return Job.objects.get(pk=job_id) if started else None


def job_record_attempt(*, job: Job, outcome: Outcome, will_retry: bool) -> Job:
    """Store the attempt and move the job to completed, delayed (retry) or failed."""
    now = timezone.now()
    JobAttempt.objects.create(
        job=job,
        number=job.attempts,
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        http_status=outcome.http_status,
        error=outcome.error,
        succeeded=outcome.ok,
    )
    changes = {"last_http_status": outcome.http_status, "last_error": outcome.error}
    if outcome.ok:
        changes.update(status=Job.Status.COMPLETED, finished_at=now)
    elif will_retry:
        retry_at = now + timedelta(seconds=backoff_seconds(job.attempts))
        changes.update(status=Job.Status.DELAYED, scheduled_for=retry_at)
    else:
        changes.update(status=Job.Status.FAILED, finished_at=now)
    Job.objects.filter(pk=job.pk).update(**changes)
    for field, value in changes.items():
        setattr(job, field, value)
    return job
