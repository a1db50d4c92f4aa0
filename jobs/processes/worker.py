"""DeliveryWorker: the RQ worker the Procfile runs (`manage.py rqworker
--worker-class jobs.processes.worker.DeliveryWorker`).

A callback is a short wait on the network, and RQ's one-job-at-a-time loop spends
most of each job on bookkeeping (some forty Redis round trips and four SQL
statements). This worker keeps RQ's loop, registration, job format and
registries, but claims delivery jobs in bulk (jobs.broker.claim: up to
WORKER_BATCH at once, status `started` in their queue's started registry),
delivers them WORKER_CONCURRENCY at a time over one pooled keep-alive session,
and records the outcomes in bulk (jobs.services.deliveries). Other jobs (the
failure webhook) take RQ's usual path. No fork per job, Django DB connections
recycled around each batch, and an "alive" key the watchdog reads.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import wraps

from django.conf import settings
from django.db import close_old_connections
from redis.exceptions import ConnectionError, TimeoutError
from rq.exceptions import NoSuchJobError
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, WorkerStatus

from jobs import broker, services
from jobs.queues import DELIVERY_QUEUES

# The worker says it is alive this often, for this long: the watchdog takes an
# active job whose worker stopped saying so as lost within a few seconds.
ALIVE_EVERY_S = 1.0
ALIVE_TTL_MS = 5000
# How long one wait for a job blocks (then RQ's heartbeat and stop checks run).
BLOCK_S = 5


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


class Batch(list):
    """The claimed delivery jobs (jobs.broker.Placed); stands in for RQ's job."""

    id = "batch"


class DeliveryWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # `manage.py rqworker` passes --serializer (pickle by default); ours is JSON.
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = broker.DeliveryJob
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(
            max_workers=settings.WORKER_CONCURRENCY, thread_name_prefix="callback"
        )
        self._stopping = False

    run_maintenance_tasks = through_redis_outages(SimpleWorker.run_maintenance_tasks)
    check_for_suspension = through_redis_outages(SimpleWorker.check_for_suspension)
    heartbeat = through_redis_outages(SimpleWorker.heartbeat)
    set_state = through_redis_outages(SimpleWorker.set_state)

    def request_stop(self, signum, frame):
        self._stopping = True
        super().request_stop(signum, frame)

    # --- alive ------------------------------------------------------------------
    def register_birth(self):
        super().register_birth()
        self._alive = threading.Event()
        threading.Thread(target=self._say_alive, daemon=True, name="alive").start()

    def register_death(self):
        self._alive.set()
        super().register_death()

    def _say_alive(self) -> None:
        # A thread, because the main one may be inside a 10-second callback.
        while not self._alive.is_set():
            broker.say_alive(self.name, ALIVE_TTL_MS)
            self._alive.wait(ALIVE_EVERY_S)

    # --- taking jobs ------------------------------------------------------------
    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """A Batch of delivery jobs, or one other job (the failure webhook) for
        RQ's usual path. Blocks, in steps, until one arrives unless burst."""
        self.set_state(WorkerStatus.IDLE)
        idle_since = time.monotonic()
        names = [queue.name for queue in self.queues]
        deliveries = [name for name in names if name in DELIVERY_QUEUES]
        others = [name for name in names if name not in DELIVERY_QUEUES]
        while True:
            try:
                found = self._take(deliveries, others, BLOCK_S if timeout else 0)
            except ConnectionError as exc:
                # Redis restarting: wait for it, as RQ's own dequeue does. A job
                # popped just before is found again by the watchdog.
                self.log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                time.sleep(1)
                continue
            if found or timeout is None:
                return found
            self.heartbeat()
            idle_for = time.monotonic() - idle_since
            if self._stopping or (
                max_idle_time is not None and idle_for > max_idle_time
            ):
                return None

    def _take(self, deliveries: list[str], others: list[str], block_s: float):
        claim = broker.claim(
            self.name, deliveries, limit=settings.WORKER_BATCH, block_s=0
        )
        if claim.deliveries:
            return Batch(claim.deliveries), None
        if others:
            # Not blocking: RQ's dequeue pops one job of the other queues.
            found = self.queue_class.dequeue_any(
                [q for q in self.queues if q.name in others],
                None,
                connection=self.connection,
                job_class=self.job_class,
                serializer=self.serializer,
            )
            if found:
                return found
        if not block_s:
            return None
        claim = broker.claim(
            self.name, deliveries, others, limit=settings.WORKER_BATCH, block_s=block_s
        )
        if claim.deliveries:
            return Batch(claim.deliveries), None
        if claim.other:
            name, job_id = claim.other
            queue = next(q for q in self.queues if q.name == name)
            try:
                return self.job_class.fetch(job_id, connection=self.connection), queue
            except NoSuchJobError:
                return None
        return None

    # --- delivering -------------------------------------------------------------
    def execute_job(self, batch, queue):
        close_old_connections()
        try:
            if not isinstance(batch, Batch):
                return super().execute_job(batch, queue)
            self.set_state(WorkerStatus.BUSY)
            services.deliver_claimed(list(batch), worker=self.name, call=self._pool.map)
            self.set_state(WorkerStatus.IDLE)
        finally:
            close_old_connections()
