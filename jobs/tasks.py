"""RQ entry points. They take ids, never model objects."""

import logging

from rq import get_current_job

from jobs import delivery, services

logger = logging.getLogger(__name__)


class CallbackFailed(Exception):
    """Raised so RQ retries the job (or records its final failure)."""


def deliver(job_id: str) -> dict:
    """POST one job's message to the backend; raise on failure so RQ retries it."""
    job = services.job_start_attempt(job_id=job_id)
    if job is None:
        logger.info("job %s is no longer pending; not delivered", job_id)
        return {"delivered": False}
    headers = {"X-Queue-Job-Id": str(job.id), "X-Queue-Attempt": str(job.attempts)}
    outcome = delivery.post_json(
        job.callback_url, {**job.payload, "jobId": str(job.id)}, headers
    )
    rq_job = get_current_job()
    will_retry = bool(rq_job and rq_job.retries_left) and not outcome.ok
    job = services.job_record_attempt(job=job, outcome=outcome, will_retry=will_retry)
    if outcome.ok:
        return {"delivered": True, "httpStatus": outcome.http_status}
    if not will_retry:
        report_failure(job)
    raise CallbackFailed(
        f"attempt {job.attempts} of {job.max_attempts}: {outcome.error}"
    )


def report_failure(job) -> None:
    """Tell the backend's webhook that a job failed for good."""
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
        delivery.webhook_url(job.type), body, {"X-Queue-Job-Id": str(job.id)}
    )
    if not outcome.ok:
        logger.warning(
            "failure webhook for job %s not accepted: %s", job.id, outcome.error
        )
