"""The RQ classes every process uses (selected in settings.RQ).

- DeliveryJob: JSON-serialized (no pickle anywhere) and retried through our
  precise scheduler, at the time recorded on the Job row (backoff, Retry-After,
  rate limit) with millisecond precision instead of RQ's whole-second
  ScheduledJobRegistry.
- DeliveryWorker: no fork per job (callbacks are short HTTP waits; a fork costs
  more than the callback), Django DB connections recycled around each job, and
  an "alive" key the watchdog reads. jobs.batch.BatchDeliveryWorker, the one the
  Procfile runs, builds on it.
"""

import threading
import time
from functools import wraps

from django.db import close_old_connections
from redis.exceptions import ConnectionError, RedisError, TimeoutError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from jobs import metrics
from jobs.scheduler import schedule_job_id

# The worker says it is alive this often, for this long: the watchdog takes an
# active job whose worker stopped saying so as lost within a few seconds.
ALIVE_EVERY_S = 1.0
ALIVE_TTL_MS = 5000


# Copy one RQ job hash (ARGV[3..2+n]: field, value pairs) to the jobs with ids
# ARGV[3+n..], under the job key prefix ARGV[1].
COPY_JOB_LUA = """
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = ARGV[2 + i] end
for i = 3 + n, #ARGV do
  redis.call('HSET', ARGV[1] .. ARGV[i], unpack(fields))
end
return #ARGV - 2 - n
"""


def copy_rq_job(client, mapping: dict, job_ids: list[str]) -> None:
    """Write RQ job hash `mapping` (Job.to_dict()) for each of `job_ids`."""
    if not job_ids:
        return
    fields = [item for pair in mapping.items() for item in pair]
    prefix = DeliveryJob.redis_job_namespace_prefix
    client.eval(COPY_JOB_LUA, 0, prefix, len(fields), *fields, *job_ids)


class DeliveryJob(Job):
    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id=id, connection=connection, serializer=JSONSerializer)

    def retry(self, queue, pipeline) -> None:
        # jobs.tasks.deliver leaves the retry's time as recorded on the row: the
        # backoff, stretched by the backend's Retry-After and the rate limit.
        due = max(time.time() + self.get_retry_interval(), self.meta.pop("retry_at", 0))
        if due <= time.time():
            return super().retry(queue, pipeline)
        self.retries_left = self.retries_left - 1
        self.set_status(JobStatus.SCHEDULED, pipeline=pipeline)
        self.save(pipeline=pipeline)
        schedule_job_id(pipeline, self.id, due)


def through_redis_outages(method):
    """RQ's loop quits on a connection error outside its dequeue; wait instead."""

    @wraps(method)
    def tolerant(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            self.log.warning("Redis unavailable (%s); carrying on in 1 s", exc)
            time.sleep(1)
            return None

    return tolerant


class DeliveryWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # `manage.py rqworker` passes --serializer (pickle by default); ours is JSON.
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = DeliveryJob
        super().__init__(*args, **kwargs)

    run_maintenance_tasks = through_redis_outages(SimpleWorker.run_maintenance_tasks)
    check_for_suspension = through_redis_outages(SimpleWorker.check_for_suspension)
    heartbeat = through_redis_outages(SimpleWorker.heartbeat)
    set_state = through_redis_outages(SimpleWorker.set_state)

    def register_birth(self):
        super().register_birth()
        self._alive = threading.Event()
        threading.Thread(target=self._say_alive, daemon=True, name="alive").start()

    def register_death(self):
        self._alive.set()
        super().register_death()

    def _say_alive(self) -> None:
        from jobs.watchdog import worker_alive_key

        # A thread, because the main one may be inside a 10-second callback.
        while not self._alive.is_set():
            try:
                self.connection.set(worker_alive_key(self.name), "1", px=ALIVE_TTL_MS)
            except RedisError:
                pass
            self._alive.wait(ALIVE_EVERY_S)

    # RQ calls these with the pipeline that records a job's end: the metrics of
    # its attempt (jobs.tasks.deliver) go along, at no extra round trip.
    def increment_successful_job_count(self, pipeline=None):
        super().increment_successful_job_count(pipeline)
        if pipeline is not None:
            metrics.PENDING.write(pipeline)

    def increment_failed_job_count(self, pipeline=None):
        super().increment_failed_job_count(pipeline)
        if pipeline is not None:
            metrics.PENDING.write(pipeline)

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
