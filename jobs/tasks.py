"""RQ entry points. They take ids, never model objects."""

import logging

from rq import get_current_job

from jobs import delivery, metrics, services
from jobs.models import Job

logger = logging.getLogger(__name__)


class CallbackFailed(Exception):
    """Raised so RQ retries the job (or records its final failure)."""


def deliver(job_id: str | None = None) -> dict:
    """POST one job's message to the backend; raise on failure so RQ retries it.

    Enqueued without arguments: the Job's id is the RQ job's own id.
    """
    rq_job = get_current_job()
    job_id = job_id or rq_job.id
    worker = (rq_job.worker_name or "") if rq_job else ""
    job = services.job_start_attempt(job_id=job_id, worker=worker)
    if job is None:
        logger.info("job %s is no longer pending; not delivered", job_id)
        return {"delivered": False}
    outcome = delivery.deliver_job(job)
    has_retries = bool(rq_job and rq_job.retries_left)
    will_retry = not outcome.ok and not outcome.permanent and has_retries
    result = "delivered" if outcome.ok else ("retry" if will_retry else "failed")
    # Before recording: a retry moves job.scheduled_for to the next attempt's time.
    metrics.PENDING.attempt(result, outcome, due=job.scheduled_for)
    job = services.job_record_attempt(job=job, outcome=outcome, will_retry=will_retry)
    if outcome.ok:
        return {"delivered": True, "httpStatus": outcome.http_status}
    if rq_job is not None:
        # RQ decides from these whether, and how soon, it runs the job again.
        if not will_retry:
            rq_job.retries_left = 0
        else:
            # The time recorded on the row: backoff, Retry-After and rate limit.
            rq_job.meta["retry_at"] = job.scheduled_for.timestamp()
    # The status only: the backend's answer (stored, truncated) may echo the message.
    reason = f"HTTP {outcome.http_status}" if outcome.http_status else "no answer"
    raise CallbackFailed(f"attempt {job.attempts} of {job.max_attempts}: {reason}")


def report_failure(job_id: str) -> dict:
    """Tell the backend's webhook that a job failed for good (retried by RQ)."""
    job = Job.objects.get(pk=job_id)
    body = {
        "jobId": str(job.id),
        "status": "failed",
        "error": job.last_error,
        "type": job.type,
        "workspaceId": job.payload.get("workspaceId"),
        "contactId": job.payload.get("contactId"),
        "attempts": job.attempts,
    }
    outcome = delivery.post_json(
        delivery.webhook_url(job.type),
        body,
        {"X-Queue-Job-Id": str(job.id)},
        message_id=f"{job.id}-failed",
    )
    rq_job = get_current_job()
    final = outcome.ok or not (rq_job and rq_job.retries_left)
    services.job_record_webhook(job_id=job_id, outcome=outcome, final=final)
    if not outcome.ok:
        raise CallbackFailed(
            f"failure webhook not accepted (HTTP {outcome.http_status})"
        )
    return {"delivered": True}
