"""The only code that changes a Job's status or talks to the queues.

scheduling: new jobs; attempts: a worker's bookkeeping around one callback;
operator: dashboard and admin actions; control: cancel, pause, resume and
reschedule from the API, one job or a whole campaign or workspace; recovery: what
the watchdog repairs.
"""

from jobs.services.attempts import (
    job_record_attempt,
    job_record_webhook,
    job_start_attempt,
    jobs_record_attempts,
    jobs_start_attempts,
)
from jobs.services.bulk import BatchItem, ItemResult, jobs_schedule_batch
from jobs.services.common import (
    IllegalTransition,
    QueueUnavailable,
    backoff_seconds,
    retry_wait_seconds,
)
from jobs.services.control import (
    Counts,
    NewTime,
    job_reschedule,
    jobs_cancel,
    jobs_pause,
    jobs_reschedule,
    jobs_resume,
)
from jobs.services.operator import (
    job_cancel,
    job_promote,
    job_retry,
    jobs_clean_completed,
    jobs_retry_failed,
)
from jobs.services.recovery import job_recover_stalled, job_requeue_lost
from jobs.services.scheduling import IdempotencyConflict, job_schedule

__all__ = [
    "BatchItem",
    "ItemResult",
    "Counts",
    "NewTime",
    "job_reschedule",
    "jobs_cancel",
    "jobs_pause",
    "jobs_reschedule",
    "jobs_resume",
    "IdempotencyConflict",
    "IllegalTransition",
    "QueueUnavailable",
    "backoff_seconds",
    "job_cancel",
    "job_promote",
    "job_record_attempt",
    "job_record_webhook",
    "job_recover_stalled",
    "job_requeue_lost",
    "job_retry",
    "job_schedule",
    "job_start_attempt",
    "jobs_clean_completed",
    "jobs_record_attempts",
    "jobs_retry_failed",
    "jobs_schedule_batch",
    "jobs_start_attempts",
    "retry_wait_seconds",
]
