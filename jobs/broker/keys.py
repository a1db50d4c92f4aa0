"""Every Redis key and channel the service uses, in one place.

RQ's and rq-scheduler's names are read from their own classes, so the layout we
write is the one their code (and django-rq's dashboard) reads. Ours start with
`queueservices:` (`qs:` for the rate-limit slots, which are many and short-lived).
"""

from rq import Queue
from rq.job import Job
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq_scheduler import Scheduler

# --- RQ -------------------------------------------------------------------------
JOB_PREFIX = Job.redis_job_namespace_prefix  # + job id: the job's hash
QUEUE_PREFIX = Queue.redis_queue_namespace_prefix  # + queue name: a list of ids
QUEUES = Queue.redis_queues_keys  # the set of every queue's key
# Per queue: ids started (member "id:worker"), finished, failed, and retries that
# RQ itself scheduled (a stock worker's Retry with an interval).
STARTED_TEMPLATE = StartedJobRegistry.key_template
FINISHED_TEMPLATE = FinishedJobRegistry.key_template
FAILED_TEMPLATE = FailedJobRegistry.key_template
RQ_SCHEDULED_TEMPLATE = ScheduledJobRegistry.key_template

# --- rq-scheduler -----------------------------------------------------------------
# Every delayed job, scored by its due time (float epoch seconds, ours; whole
# seconds when rq-scheduler's own enqueue_at wrote it).
SCHEDULED = Scheduler.scheduled_jobs_key

# --- ours ---------------------------------------------------------------------------
# When the next scheduler pass is planned, and the channel that wakes it earlier.
NEXT_WAKE = "queueservices:scheduler:next_wake"
WAKEUP_CHANNEL = "queueservices:scheduler:wakeup"
WATCHDOG_LOCK = "queueservices:watchdog:lock"
# The run id of the Redis primary the watchdog last compared every pending job
# with; a primary without it (promoted, restarted, flushed) is compared at once.
RECONCILED_PRIMARY = "queueservices:watchdog:reconciled-primary"
WORKER_ALIVE_PREFIX = "queueservices:worker-alive:"
METRICS_PREFIX = "queueservices:metrics:"
# Jobs claimed while their workspace had its share of a worker's slots wait here,
# one list per workspace, in order; the set names the workspaces with such a list.
PARKED_PREFIX = "queueservices:parked:"
PARKED = "queueservices:parked"
RATE_PREFIX = "qs:rate:"
# Names of the queues an operator paused: workers claim nothing from them (CLAIM).
PAUSED_QUEUES = "queueservices:paused-queues"


def job(job_id: str) -> str:
    return JOB_PREFIX + job_id


def queue(name: str) -> str:
    return QUEUE_PREFIX + name


def started(queue_name: str) -> str:
    return STARTED_TEMPLATE.format(queue_name)


def finished(queue_name: str) -> str:
    return FINISHED_TEMPLATE.format(queue_name)


def failed(queue_name: str) -> str:
    return FAILED_TEMPLATE.format(queue_name)


def rq_scheduled(queue_name: str) -> str:
    return RQ_SCHEDULED_TEMPLATE.format(queue_name)


def worker_alive(worker_name: str) -> str:
    return WORKER_ALIVE_PREFIX + worker_name


def parked(workspace_id: str) -> str:
    return PARKED_PREFIX + workspace_id


def metric(name: str) -> str:
    return METRICS_PREFIX + name


def rate_slots(workspace_id: str) -> str:
    """Prefix of one workspace's per-second slot counters (+ the epoch second)."""
    return f"{RATE_PREFIX}{workspace_id}:"
