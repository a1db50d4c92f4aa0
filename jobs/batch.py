"""BatchDeliveryWorker: many callbacks at once, bookkeeping in bulk.

A callback is a short wait on the network, and RQ's one-job-at-a-time loop spends
most of each job on bookkeeping (some forty Redis round trips and four SQL
statements). This worker keeps RQ's loop, job format and registries but works on
batches: one Lua script claims up to WORKER_BATCH jobs from the queues (status
`started`, in the queue's StartedJobRegistry), two SQL statements mark them active,
WORKER_CONCURRENCY threads make the callbacks over one pooled keep-alive session,
and one bulk insert, one update per outcome and one Redis pipeline record the
results. Retries go through the precise scheduler, final failures to the failed
registry and the failure webhook, exactly as with DeliveryWorker.

Select it with `manage.py rqworker --worker-class jobs.batch.BatchDeliveryWorker`
(the Procfile does).
"""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import close_old_connections
from rq.exceptions import NoSuchJobError
from rq.utils import utcformat
from rq.worker import WorkerStatus

from jobs import delivery, metrics, services
from jobs.queues import DELIVERY_QUEUES
from jobs.rq import DeliveryWorker, through_redis_outages
from jobs.scheduler import schedule_job_id

# Pop up to ARGV[1] jobs from the queues (KEYS, in order), skipping ids whose hash
# is gone (cancelled), and mark each started by worker ARGV[2] in its queue's
# StartedJobRegistry until ARGV[4]. ARGV[6], if given, is a job id already popped
# (by BLPOP) from queue KEYS[ARGV[7]]. Returns [queue name, job id, ...].
CLAIM_LUA = """
local claimed = {}
local function claim(queue_key, id)
  local job_key = 'rq:job:' .. id
  if redis.call('EXISTS', job_key) == 0 then return end
  local origin = redis.call('HGET', job_key, 'origin')
  redis.call('HSET', job_key, 'status', 'started', 'started_at', ARGV[3],
             'worker_name', ARGV[2])
  redis.call('ZADD', 'rq:wip:' .. origin, ARGV[4], id .. ':' .. ARGV[5])
  table.insert(claimed, origin)
  table.insert(claimed, id)
end
if ARGV[6] then claim(KEYS[tonumber(ARGV[7])], ARGV[6]) end
for _, queue_key in ipairs(KEYS) do
  while #claimed / 2 < tonumber(ARGV[1]) do
    local id = redis.call('LPOP', queue_key)
    if not id then break end
    claim(queue_key, id)
  end
end
return claimed
"""

BLOCK_S = 5
RESULT_TTL_S = 3600
FAILURE_TTL_S = 365 * 24 * 3600


class Batch(list):
    """The (queue name, job id) pairs claimed together; stands in for RQ's job."""

    id = "batch"


class BatchDeliveryWorker(DeliveryWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(
            max_workers=settings.WORKER_CONCURRENCY, thread_name_prefix="callback"
        )

    # --- taking jobs ------------------------------------------------------------
    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """A Batch of delivery jobs, or one other job (failure webhooks, on my-queue)
        for RQ's usual path. Blocks, in steps, until one arrives unless burst."""
        self.set_state(WorkerStatus.IDLE)
        idle_since = time.monotonic()
        while True:
            try:
                found = self._take()
                if found or timeout is None:
                    return found
                popped = self.connection.blpop(
                    [queue.key for queue in self.queues], timeout=BLOCK_S
                )
                if popped:
                    found = self._take(popped=(popped[0].decode(), popped[1].decode()))
                    if found:
                        return found
            except redis.exceptions.ConnectionError as exc:
                # Redis restarting: wait for it, as RQ's own dequeue does. A job popped
                # just before is found again by the watchdog.
                self.log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                time.sleep(1)
                continue
            self.heartbeat()
            idle_for = time.monotonic() - idle_since
            if self._stop_requested or (
                max_idle_time is not None and idle_for > max_idle_time
            ):
                return None

    def _take(self, popped: tuple[str, str] | None = None):
        delivery_keys = [q.key for q in self.queues if q.name in DELIVERY_QUEUES]
        if popped and popped[0] not in delivery_keys:
            queue = next(q for q in self.queues if q.key == popped[0])
            try:
                return self.job_class.fetch(
                    popped[1], connection=self.connection
                ), queue
            except NoSuchJobError:
                return None
        first = (delivery_keys.index(popped[0]) + 1, popped[1]) if popped else None
        batch = self._claim(delivery_keys, first)
        if batch:
            return batch, None
        others = [q for q in self.queues if q.name not in DELIVERY_QUEUES]
        if others and not popped:
            return self.queue_class.dequeue_any(
                others,
                None,
                connection=self.connection,
                job_class=self.job_class,
                serializer=self.serializer,
            )
        return None

    def _claim(self, keys: list[str], first: tuple[int, str] | None) -> Batch:
        expires = time.time() + settings.JOB_STALL_TIMEOUT_MS / 1000 + 60
        args = [
            settings.WORKER_BATCH,
            self.name,
            utcformat(datetime.now(UTC)),
            expires,
            self.name,
        ]
        if first:
            args += [first[1], first[0]]
        flat = self.connection.eval(CLAIM_LUA, len(keys), *keys, *args) if keys else []
        names = [value.decode() for value in flat]
        return Batch(zip(names[::2], names[1::2], strict=True))

    # --- delivering -------------------------------------------------------------
    def execute_job(self, batch, queue):
        if not isinstance(batch, Batch):
            return super().execute_job(batch, queue)
        self.set_state(WorkerStatus.BUSY)
        close_old_connections()
        try:
            self._deliver(batch)
        finally:
            close_old_connections()
            self.set_state(WorkerStatus.IDLE)

    def _deliver(self, batch: Batch) -> None:
        origin = dict((job_id, queue_name) for queue_name, job_id in batch)
        jobs = services.jobs_start_attempts(job_ids=list(origin), worker=self.name)
        outcomes = list(self._pool.map(delivery.deliver_job, jobs))
        decisions = services.jobs_record_attempts(
            results=list(zip(jobs, outcomes, strict=True))
        )
        skipped = set(origin) - {str(job.id) for job in jobs}
        tally = metrics.Tally()
        for job, outcome in zip(jobs, outcomes, strict=True):
            # "completed", "failed", or the time of the retry.
            decision = decisions[str(job.id)]
            result = {"completed": "delivered", "failed": "failed"}.get(decision)
            # job.scheduled_for was read before the attempt: the time it was due.
            tally.attempt(result or "retry", outcome, due=job.scheduled_for)
        self._finish_in_redis(origin, decisions, skipped, tally)

    # The database already holds the outcome; if Redis is down the registries are
    # tidied by RQ's maintenance and the watchdog later, and the worker lives on.
    @through_redis_outages
    def _finish_in_redis(
        self, origin: dict, decisions: dict, skipped: set, tally: metrics.Tally
    ) -> None:
        now = time.time()
        stamp = utcformat(datetime.now(UTC))
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id, queue_name in origin.items():
                key = f"rq:job:{job_id}"
                pipe.zrem(f"rq:wip:{queue_name}", f"{job_id}:{self.name}")
                decision = decisions.get(job_id)
                if job_id in skipped or decision == "completed":
                    pipe.hset(key, mapping={"status": "finished", "ended_at": stamp})
                    pipe.expire(key, RESULT_TTL_S)
                    pipe.zadd(f"rq:finished:{queue_name}", {job_id: now + RESULT_TTL_S})
                elif decision == "failed":
                    pipe.hset(key, mapping={"status": "failed", "ended_at": stamp})
                    pipe.zadd(f"rq:failed:{queue_name}", {job_id: now + FAILURE_TTL_S})
                else:  # a retry, due at the epoch seconds in `decision`
                    pipe.hset(key, "status", "scheduled")
                    schedule_job_id(pipe, job_id, decision)
            tally.write(pipe)
            pipe.execute()
