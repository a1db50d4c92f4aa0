"""A worker's bookkeeping around callback attempts, for any number of jobs at once:
a stock RQ worker's one job (jobs.tasks.deliver) is a batch of one."""

import uuid
from collections import defaultdict, namedtuple
from datetime import timedelta

from django.db import router
from django.db.models import F
from django.utils import timezone

from jobs import broker
from jobs.delivery import Outcome
from jobs.models import Job, JobAttempt
from jobs.queues import WEBHOOK_QUEUE
from jobs.ratelimit import retry_times_within_rate
from jobs.retries import retry_wait_seconds, webhook_waits
from jobs.rows import insert_rows, update_returning, update_where_in
from jobs.services.holds import jobs_hold_paused
from jobs.writelock import write_turn

# Rows a worker may start an attempt on. Not `active`: an active row is someone
# else's attempt in flight (a claim Redis lost in a restart and handed out again
# must not deliver twice); if that worker is gone the watchdog writes the attempt
# off and queues the job again.
STARTABLE = [Job.Status.WAITING, Job.Status.DELAYED]


def jobs_start_attempts(*, job_ids: list[str], worker: str) -> list[Job]:
    """Mark the jobs active and count their attempt, in one statement (and a read
    for paused scopes); returns the jobs to deliver, with DELIVERY_FIELDS only.

    Left out: unknown, cancelled, completed (a redelivery after a worker crash),
    active elsewhere, or held by a paused campaign or workspace (then set paused:
    jobs.services.holds).
    """
    alias = router.db_for_write(Job)
    with write_turn(alias):  # beside the web's inserts (jobs.writelock)
        jobs_hold_paused(job_ids=job_ids)
    return update_returning(
        Job,
        {"status": Job.Status.ACTIVE, "started_at": timezone.now(), "worker": worker},
        ("attempts",),
        [uuid.UUID(job_id) for job_id in job_ids],
        STARTABLE,
        DELIVERY_FIELDS,
        using=alias,
        # The turn for the statement alone: its rows are converted after it
        # (their payloads' JSON), while the recorder takes its turn.
        lock=lambda: write_turn(alias),
    )


# What a callback and its record read (jobs.delivery, jobs_record_attempts): a row
# of all 31 columns, 12 of them dates to convert, was a third of starting a batch
# (cProfile). Reading another field of these jobs costs one query per job.
DELIVERY_FIELDS = (
    "id", "status", "attempts", "max_attempts", "scheduled_for", "started_at",
    "worker", "workspace_id", "campaign_id", "callback_url", "payload", "queue",
    "type", "last_http_status", "last_error",
)  # fmt: skip


def jobs_record_attempts(*, results: list[tuple[Job, Outcome]]) -> dict[str, object]:
    """Store each attempt and move its job to completed, delayed (a retry) or failed:
    one insert, one update per kind of success, one per failure. A final failure
    queues the failure webhook.

    Returns, per job id, broker.COMPLETED, broker.FAILED, or the epoch seconds of
    its retry. The attempts left come from the database (attempts < max_attempts).
    """
    now = timezone.now()
    _save_attempts(results)
    decisions: dict[str, object] = {}
    completed = defaultdict(list)
    failures = []
    for job, outcome in results:
        if outcome.ok:
            completed[outcome.http_status].append(job.pk)
            decisions[str(job.id)] = broker.COMPLETED
            continue
        will_retry = not outcome.permanent and job.attempts < job.max_attempts
        failures.append((job, _failure_changes(job, outcome, will_retry, now)))
    _retries_within_rate(failures)
    for job, changes in failures:
        Job.objects.filter(pk=job.pk).update(**changes)
        for field, value in changes.items():
            setattr(job, field, value)
        if changes["status"] == Job.Status.DELAYED:
            decisions[str(job.id)] = changes["scheduled_for"].timestamp()
        else:
            decisions[str(job.id)] = broker.FAILED
            _queue_failure_webhook(job)
    for http_status, pks in completed.items():
        changes = {
            "status": Job.Status.COMPLETED,
            "finished_at": now,
            "last_http_status": http_status,
            "last_error": "",
        }
        update_where_in(Job, changes, pks, using=router.db_for_write(Job))
    for job, outcome in results:
        if outcome.ok:
            job.status, job.finished_at = Job.Status.COMPLETED, now
            job.last_http_status, job.last_error = outcome.http_status, ""
    return decisions


# A JobAttempt row as insert_rows reads it (its fields' attnames), without a model.
AttemptRow = namedtuple(
    "AttemptRow",
    "job_id number started_at duration_ms http_status error succeeded",
)


def _save_attempts(results: list[tuple[Job, Outcome]]) -> None:
    """One statement for the lot. An attempt the watchdog already wrote off as
    stalled is overwritten: its worker was only slow, so what it saw is the truth."""
    rows = [
        AttemptRow(
            job.pk,
            job.attempts,
            outcome.started_at,
            outcome.duration_ms,
            outcome.http_status,
            outcome.error,
            outcome.ok,
        )
        for job, outcome in results
    ]
    insert_rows(
        JobAttempt,
        rows,
        using=router.db_for_write(JobAttempt),
        upsert_on=("job", "number"),
    )


def _retries_within_rate(failures: list[tuple[Job, dict]]) -> None:
    """Move the retries' times where the workspaces' rate limits allow them: a
    retry is a message to the backend too."""
    retrying = [(job, c) for job, c in failures if c["status"] == Job.Status.DELAYED]
    times = retry_times_within_rate(
        [(job.workspace_id, changes["scheduled_for"]) for job, changes in retrying]
    )
    for (_, changes), at in zip(retrying, times, strict=True):
        changes["scheduled_for"] = at


def _failure_changes(job: Job, outcome: Outcome, will_retry: bool, now) -> dict:
    changes = {"last_http_status": outcome.http_status, "last_error": outcome.error}
    if will_retry:
        wait = (
            0
            if outcome.lost
            else retry_wait_seconds(job.attempts, outcome.retry_after_s)
        )
        changes.update(
            status=Job.Status.DELAYED, scheduled_for=now + timedelta(seconds=wait)
        )
    else:
        changes.update(
            status=Job.Status.FAILED, finished_at=now, webhook_status="pending"
        )
    return changes


def _queue_failure_webhook(job: Job) -> None:
    broker.enqueue_task(
        WEBHOOK_QUEUE,
        "jobs.tasks.report_failure",
        (str(job.id),),
        job_id=f"{job.id}-webhook",
        retry_waits=webhook_waits(),
    )


def job_record_webhook(*, job_id: str, outcome: Outcome, final: bool) -> None:
    """Record one failure-webhook attempt on its job."""
    status = "delivered" if outcome.ok else ("failed" if final else "pending")
    Job.objects.filter(pk=job_id).update(
        webhook_status=status,
        webhook_attempts=F("webhook_attempts") + 1,
        webhook_error=outcome.error,
    )
