"""Access to Redis, the RQ queues and the scheduler, built on first use.

django-rq opens a new connection pool on every get_queue() call; a web process
serving thousands of requests a second must reuse one pool per Redis config.
"""

from functools import lru_cache

import django_rq
from django.conf import settings
from django_rq.connection_utils import get_redis_connection
from redis import Redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError

from jobs.models import Job

IMMEDIATE_QUEUES = {Job.Type.SMS: "send-sms-queue", Job.Type.EMAIL: "send-email-queue"}
DELAYED_QUEUES = {
    Job.Type.SMS: "scheduled-sms-queue",
    Job.Type.EMAIL: "scheduled-email-queue",
}
# Queues that hold only jobs.tasks.deliver jobs (the batch worker claims these).
DELIVERY_QUEUES = {*IMMEDIATE_QUEUES.values(), *DELAYED_QUEUES.values()}


def queue_name_for(job_type: str, delayed: bool) -> str:
    return (DELAYED_QUEUES if delayed else IMMEDIATE_QUEUES)[job_type]


def redis_connection() -> Redis:
    config = settings.RQ_QUEUES[settings.QUEUE_NAMES[0]]
    return _connection_for(tuple(sorted((k, repr(v)) for k, v in config.items())))


@lru_cache(maxsize=8)
def _connection_for(config_key: tuple) -> Redis:
    # Keyed on the settings so tests that point RQ_QUEUES elsewhere get a new pool.
    return get_redis_connection(settings.RQ_QUEUES[settings.QUEUE_NAMES[0]])


def get_queue(name: str) -> Queue:
    return django_rq.get_queue(name, connection=redis_connection())


def get_scheduler():
    # Delayed jobs carry their own queue name; the scheduler's default is unused.
    return django_rq.get_scheduler(
        DELAYED_QUEUES[Job.Type.SMS], connection=redis_connection(), interval=1
    )


def fetch_rq_job(job_id: str):
    from jobs.rq import DeliveryJob

    try:
        return DeliveryJob.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return None


def live_workers() -> list[Worker]:
    return Worker.all(connection=redis_connection())
