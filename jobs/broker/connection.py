"""The Redis connection, and RQ's and rq-scheduler's objects on it, built on first use.

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
from rq.job import Job
from rq.serializers import JSONSerializer


class DeliveryJob(Job):
    """RQ's Job, always JSON-serialized: no pickle anywhere (settings.RQ JOB_CLASS)."""

    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id=id, connection=connection, serializer=JSONSerializer)


def redis_connection() -> Redis:
    global _last
    config = settings.RQ_QUEUES[settings.QUEUE_NAMES[0]]
    last_config, connection = _last
    if last_config is not config:
        key = tuple(sorted((k, repr(v)) for k, v in config.items()))
        connection = _connection_for(key)
        _last = (config, connection)
    return connection


# The settings' config object and its connection, replaced together: every request
# and worker step asks, and keying on the config's values costs more than the call.
_last: tuple = (None, None)


@lru_cache(maxsize=8)
def _connection_for(config_key: tuple) -> Redis:
    # Keyed on the settings so tests that point RQ_QUEUES elsewhere get a new pool.
    return get_redis_connection(settings.RQ_QUEUES[settings.QUEUE_NAMES[0]])


def get_queue(name: str) -> Queue:
    return django_rq.get_queue(name, connection=redis_connection())


def get_scheduler():
    """Our rq-scheduler (settings.RQ SCHEDULER_CLASS), as django-rq builds it.

    Delayed jobs carry their own queue name; the scheduler's default is unused.
    """
    return django_rq.get_scheduler(
        settings.QUEUE_NAMES[0], connection=redis_connection(), interval=1
    )


def fetch(job_id: str) -> DeliveryJob | None:
    """The RQ job with this id, or None."""
    try:
        return DeliveryJob.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return None


def live_workers() -> list[Worker]:
    return Worker.all(connection=redis_connection())


def ping() -> bool:
    return bool(redis_connection().ping())
