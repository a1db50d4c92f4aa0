"""RQ entry points. They take ids, never model objects.

Our worker (jobs.processes.worker) never runs `deliver`: it claims delivery jobs
in bulk and delivers them through the same service (jobs.services.deliveries). A
stock RQ worker runs it, one job at a time, and records the end itself: so the
task tells RQ what the database decided (retry when, or no more attempts).
"""

import logging
import math
import time

from rq import get_current_job

from jobs import broker, delivery, services
from jobs.models import Job

logger = logging.getLogger(__name__)


class CallbackFailed(Exception):
    """Raised so RQ records the attempt as failed (and retries it if told to)."""


def deliver(job_id: str | None = None) -> dict:
    """POST one job's message to the backend.

    Placed without arguments: the RQ job's id is the Job's (job_id is for a job
    enqueued by hand, `enqueue_call("jobs.tasks.deliver", args=(id,))`).
    """
    rq_job = get_current_job()
    job_id = job_id or rq_job.id
    job, decision = services.deliver_one(job_id, worker=rq_job.worker_name or "")
    if job is None:
        logger.info("job %s is no longer pending; not delivered", job_id)
        return {"delivered": False}
    if decision == broker.COMPLETED:
        return {"delivered": True, "httpStatus": job.last_http_status}
    if decision == broker.FAILED:
        rq_job.retries_left = 0
    else:
        # One more run, at the time the database recorded (backoff, Retry-After,
        # rate limit). RQ's scheduled registry keeps whole seconds and may release
        # a job up to a second early: round up, plus one.
        rq_job.retries_left = 1
        rq_job.retry_intervals = [math.ceil(decision - time.time()) + 1]
    # The status only: the backend's answer (stored, truncated) may echo the message.
    status = job.last_http_status
    reason = f"HTTP {status}" if status else "no answer"
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
