"""A worker's bookkeeping around one callback attempt."""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rq import Retry

from jobs.delivery import Outcome
from jobs.models import Job, JobAttempt
from jobs.queues import get_queue
from jobs.ratelimit import retry_times_within_rate
from jobs.services.common import PENDING, backoff_seconds, retry_wait_seconds
from jobs.services.holds import jobs_hold_paused

WEBHOOK_QUEUE = "my-queue"


def job_start_attempt(*, job_id: str, worker: str = "") -> Job | None:
    """Mark the job active and count the attempt.

    Returns None when the job must not be delivered: unknown, cancelled, already
    completed (a redelivery after a worker crash), or held by a paused campaign or
    workspace (then set paused: jobs.services.holds).
    """
    jobs_hold_paused(job_ids=[job_id])
    started = Job.objects.filter(pk=job_id, status__in=PENDING).update(
        status=Job.Status.ACTIVE,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        worker=worker,
    )
    return Job.objects.get(pk=job_id) if started else None


def job_record_attempt(*, job: Job, outcome: Outcome, will_retry: bool) -> Job:
    """Store the attempt and move the job to completed, delayed (retry) or failed.

    A final failure also queues the failure webhook.
    """
    _save_attempt(job, outcome)
    changes = _outcome_changes(job, outcome, will_retry, timezone.now())
    if will_retry:
        # A retry is a message to the backend too: it counts toward the rate.
        [changes["scheduled_for"]] = retry_times_within_rate(
            [(job.workspace_id, changes["scheduled_for"])]
        )
    Job.objects.filter(pk=job.pk).update(**changes)
    for field, value in changes.items():
        setattr(job, field, value)
    if job.status == Job.Status.FAILED:
        _queue_failure_webhook(job)
    return job


def jobs_start_attempts(*, job_ids: list[str], worker: str) -> list[Job]:
    """job_start_attempt for a batch, in two statements (and a read for paused
    scopes); returns the jobs to deliver."""
    jobs_hold_paused(job_ids=job_ids)
    now = timezone.now()
    Job.objects.filter(pk__in=job_ids, status__in=PENDING).update(
        status=Job.Status.ACTIVE,
        attempts=F("attempts") + 1,
        started_at=now,
        worker=worker,
    )
    return list(
        Job.objects.filter(
            pk__in=job_ids, status=Job.Status.ACTIVE, worker=worker, started_at=now
        )
    )


def jobs_record_attempts(*, results: list[tuple[Job, Outcome]]) -> dict[str, object]:
    """job_record_attempt for a batch: one insert, one update per kind of success.

    Returns, per job id, "completed", "failed", or the epoch seconds of its retry.
    The attempts left come from the database (attempts < max_attempts).
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            JobAttempt.objects.bulk_create(
                [
                    JobAttempt(job=job, number=job.attempts, **_attempt_fields(o))
                    for job, o in results
                ]
            )
    except IntegrityError:
        for job, outcome in results:
            _save_attempt(job, outcome)
    decisions: dict[str, object] = {}
    completed = defaultdict(list)
    failures = []
    for job, outcome in results:
        if outcome.ok:
            completed[outcome.http_status].append(job.pk)
            decisions[str(job.id)] = "completed"
            continue
        will_retry = not outcome.permanent and job.attempts < job.max_attempts
        failures.append((job, _outcome_changes(job, outcome, will_retry, now)))
    _retries_within_rate(failures)
    for job, changes in failures:
        Job.objects.filter(pk=job.pk).update(**changes)
        if changes["status"] == Job.Status.DELAYED:
            decisions[str(job.id)] = changes["scheduled_for"].timestamp()
        else:
            decisions[str(job.id)] = "failed"
            _queue_failure_webhook(job)
    for http_status, pks in completed.items():
        Job.objects.filter(pk__in=pks).update(
            status=Job.Status.COMPLETED,
            finished_at=now,
            last_http_status=http_status,
            last_error="",
        )
    return decisions


def _retries_within_rate(failures: list[tuple[Job, dict]]) -> None:
    """Move the retries' times where the workspaces' rate limits allow them."""
    retrying = [(job, c) for job, c in failures if c["status"] == Job.Status.DELAYED]
    times = retry_times_within_rate(
        [(job.workspace_id, changes["scheduled_for"]) for job, changes in retrying]
    )
    for (_, changes), at in zip(retrying, times, strict=True):
        changes["scheduled_for"] = at


def _outcome_changes(job: Job, outcome: Outcome, will_retry: bool, now) -> dict:
    changes = {"last_http_status": outcome.http_status, "last_error": outcome.error}
    if outcome.ok:
        changes.update(status=Job.Status.COMPLETED, finished_at=now)
    elif will_retry:
        wait = retry_wait_seconds(job.attempts, outcome.retry_after_s)
        changes.update(
            status=Job.Status.DELAYED, scheduled_for=now + timedelta(seconds=wait)
        )
    else:
        changes.update(
            status=Job.Status.FAILED, finished_at=now, webhook_status="pending"
        )
    return changes


def _attempt_fields(outcome: Outcome) -> dict:
    return {
        "started_at": outcome.started_at,
        "duration_ms": outcome.duration_ms,
        "http_status": outcome.http_status,
        "error": outcome.error,
        "succeeded": outcome.ok,
    }


def _save_attempt(job: Job, outcome: Outcome) -> None:
    fields = _attempt_fields(outcome)
    try:
        with transaction.atomic():
            JobAttempt.objects.create(job=job, number=job.attempts, **fields)
    except IntegrityError:
        # The watchdog already wrote this attempt off as stalled; the worker was
        # only slow, so what it saw is the truth.
        JobAttempt.objects.filter(job=job, number=job.attempts).update(**fields)


def _queue_failure_webhook(job: Job) -> None:
    attempts = settings.WEBHOOK_ATTEMPTS
    retry = None
    if attempts > 1:
        retry = Retry(
            max=attempts - 1, interval=[backoff_seconds(n) for n in range(1, attempts)]
        )
    get_queue(WEBHOOK_QUEUE).enqueue_call(
        "jobs.tasks.report_failure",
        args=(str(job.id),),
        job_id=f"{job.id}-webhook",
        retry=retry,
    )


def job_record_webhook(*, job_id: str, outcome: Outcome, final: bool) -> None:
    """Record one failure-webhook attempt on its job."""
    status = "delivered" if outcome.ok else ("failed" if final else "pending")
    Job.objects.filter(pk=job_id).update(
        webhook_status=status,
        webhook_attempts=F("webhook_attempts") + 1,
        webhook_error=outcome.error,
    )
