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
from jobs.models import AuditEntry, Job, JobAttempt
from jobs.queues import fetch_rq_job, get_queue, get_scheduler, queue_name_for

PENDING = [Job.Status.WAITING, Job.Status.DELAYED, Job.Status.ACTIVE]


class QueueUnavailable(Exception):
    """Redis could not be reached; nothing was scheduled."""


class IllegalTransition(Exception):
    """The job is not in a state that allows the requested action."""


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
        recipient=str(payload.get("phoneNumber") or payload.get("to") or ""),
        campaign_id=str(metadata.get("campaignId") or ""),
        payload=payload,
        metadata=metadata,
        callback_url=callback_url(job_type, metadata),
        status=Job.Status.DELAYED if delay_ms > 0 else Job.Status.WAITING,
        max_attempts=settings.JOB_ATTEMPTS,
        due_at=now + timedelta(milliseconds=delay_ms),
    )
    job.scheduled_for = job.due_at
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


# --- operator actions (dashboard, admin) --------------------------------------------


def _transition(job_id, *, allowed: list[str], to: str, action: str, **changes) -> Job:
    """Move a job from one of `allowed` to `to` in one guarded UPDATE, or refuse."""
    updated = Job.objects.filter(pk=job_id, status__in=allowed).update(
        status=to, **changes
    )
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise IllegalTransition(f"There is no job {job_id}.")
    if not updated:
        raise IllegalTransition(f"Cannot {action} a job that is {job.status}.")
    return job


def job_retry(*, job_id, actor: str) -> Job:
    """Run a failed job again now, with a fresh set of attempts."""
    job = _transition(
        job_id,
        allowed=[Job.Status.FAILED],
        to=Job.Status.WAITING,
        action="retry",
        max_attempts=F("attempts") + settings.JOB_ATTEMPTS,
        scheduled_for=timezone.now(),
        finished_at=None,
    )
    try:
        _delete_rq_job(job)
        _enqueue(job, delayed=False)
    except RedisError as exc:
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
        raise QueueUnavailable(str(exc)) from exc
    _audit(actor, "retry", job=job)
    return job


def job_cancel(*, job_id, actor: str) -> Job:
    """Remove a waiting or delayed job: it will not be delivered."""
    job = _transition(
        job_id,
        allowed=[Job.Status.WAITING, Job.Status.DELAYED],
        to=Job.Status.CANCELLED,
        action="remove",
        finished_at=timezone.now(),
    )
    # The row is the guard (a worker skips cancelled jobs); Redis cleanup frees memory.
    try:
        scheduler = get_scheduler()
        scheduler.connection.zrem(scheduler.scheduled_jobs_key, str(job.id))
        _delete_rq_job(job)
    except RedisError:
        pass
    _audit(actor, "remove", job=job)
    return job


def job_promote(*, job_id, actor: str) -> Job:
    """Run a delayed job now instead of at its due time."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status != Job.Status.DELAYED:
        raise IllegalTransition(f"Cannot promote a job that is {job and job.status}.")
    try:
        moved = get_scheduler().promote(str(job.id))
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    if not moved:
        raise IllegalTransition("The job is already on its way to a worker.")
    job = _transition(
        job_id,
        allowed=[Job.Status.DELAYED],
        to=Job.Status.WAITING,
        action="promote",
        scheduled_for=timezone.now(),
    )
    _audit(actor, "promote", job=job)
    return job


def jobs_retry_failed(*, queue: str, actor: str) -> int:
    """Retry every failed job of a queue; returns how many."""
    failed = Job.objects.filter(queue=queue, status=Job.Status.FAILED)
    count = 0
    for job_id in failed.values_list("id", flat=True).iterator(chunk_size=500):
        job_retry(job_id=job_id, actor=actor)
        count += 1
    _audit(actor, "retry all failed", queue=queue, detail=f"{count} job(s)")
    return count


def jobs_clean_completed(*, queue: str, older_than: timedelta, actor: str) -> int:
    """Delete completed jobs of a queue that finished before now - older_than."""
    old = Job.objects.filter(
        queue=queue,
        status=Job.Status.COMPLETED,
        finished_at__lt=timezone.now() - older_than,
    )
    _, deleted = old.delete()
    count = deleted.get(Job._meta.label, 0)
    _audit(actor, "clean completed", queue=queue, detail=f"older than {older_than}")
    return count


def _delete_rq_job(job: Job) -> None:
    rq_job = fetch_rq_job(str(job.id))
    if rq_job is not None:
        rq_job.delete()


def _audit(actor: str, action: str, *, job: Job | None = None, **fields) -> None:
    AuditEntry.objects.create(actor=actor, action=action, job=job, **fields)
