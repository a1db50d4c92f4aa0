"""The only code that changes a Job's status or hands jobs to the broker.

scheduling / batch: new jobs; deliveries and attempts: a worker's bookkeeping
around callbacks; operator: one job's actions (dashboard, admin, API); control:
cancel, pause, resume and reschedule of one job or a whole campaign or workspace
(through chunks); cleaning: delete finished jobs; holds: pauses that hold new jobs;
recovery: what the watchdog repairs.
"""

from jobs.services.attempts import (
    job_record_webhook,
    jobs_record_attempts,
    jobs_start_attempts,
)
from jobs.services.batch import BatchItem, ItemResult, jobs_schedule_batch
from jobs.services.cleaning import (
    CLEANABLE_STATUSES,
    cleanable,
    job_remove,
    jobs_clean,
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
from jobs.services.deliveries import (
    Finished,
    deliver_one,
    record_outcomes,
    start_claimed,
)
from jobs.services.errors import (
    IdempotencyConflict,
    IllegalTransition,
    QueueUnavailable,
)
from jobs.services.operator import (
    CANCELLABLE,
    job_cancel,
    job_promote,
    job_retry,
    jobs_retry_failed,
    queue_pause,
    queue_resume,
)
from jobs.services.recovery import job_recover_stalled, job_requeue_lost
from jobs.services.scheduling import job_schedule

__all__ = [
    "CANCELLABLE",
    "BatchItem",
    "Counts",
    "IdempotencyConflict",
    "IllegalTransition",
    "ItemResult",
    "NewTime",
    "QueueUnavailable",
    "Finished",
    "record_outcomes",
    "start_claimed",
    "deliver_one",
    "job_cancel",
    "job_promote",
    "job_record_webhook",
    "job_recover_stalled",
    "job_requeue_lost",
    "job_reschedule",
    "job_retry",
    "job_schedule",
    "jobs_cancel",
    "CLEANABLE_STATUSES",
    "cleanable",
    "job_remove",
    "jobs_clean",
    "jobs_pause",
    "jobs_record_attempts",
    "jobs_reschedule",
    "jobs_resume",
    "jobs_retry_failed",
    "jobs_schedule_batch",
    "jobs_start_attempts",
    "queue_pause",
    "queue_resume",
]
