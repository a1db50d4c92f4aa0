"""DeliveryWorker: the RQ worker the Procfile runs (`manage.py rqworker
--worker-class jobs.processes.worker.DeliveryWorker`).

RQ's one-job-at-a-time loop spends most of a callback on bookkeeping (some forty
Redis round trips and four SQL statements) and waits for each callback in turn.
This worker keeps RQ's loop, registration, job format and registries; when
delivery jobs are due it hands over to the delivery engine
(jobs.processes.engine): up to WORKER_CONCURRENCY callbacks in flight, claimed the
moment a slot frees, with a fair share per workspace and outcomes recorded in
bulk. Other jobs (the failure webhook) take RQ's usual path, also while the
engine runs. No fork per job, and an "alive" key the watchdog reads.
"""

import threading
import time
from functools import wraps

from django.conf import settings
from django.db import close_old_connections
from rq.exceptions import NoSuchJobError
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, WorkerStatus

from jobs import broker
from jobs.processes.engine import DeliveryEngine
from jobs.processes.heap import freeze_startup_heap
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
        except broker.UNAVAILABLE as exc:
            self.log.warning("Redis unavailable (%s); carrying on in 1 s", exc)
            time.sleep(1)
            return None

    return tolerant


class Batch(list):
    """The claimed delivery jobs (jobs.broker.Claimed); stands in for RQ's job."""

    id = "batch"


class DeliveryWorker(SimpleWorker):
    def __init__(self, queues, *args, **kwargs):
        # `manage.py rqworker` passes --serializer (pickle by default); ours is JSON.
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = broker.DeliveryJob
        # RQ's bookkeeping on the broker's connection too (django-rq opens its own):
        # one pool, which follows a Sentinel failover at once (jobs.broker).
        kwargs["connection"] = broker.redis_connection()
        queues = [broker.get_queue(getattr(q, "name", q)) for q in queues]
        super().__init__(queues, *args, **kwargs)
        self._engine = None
        self._stopping = self._burst = False

    run_maintenance_tasks = through_redis_outages(SimpleWorker.run_maintenance_tasks)
    check_for_suspension = through_redis_outages(SimpleWorker.check_for_suspension)
    heartbeat = through_redis_outages(SimpleWorker.heartbeat)
    set_state = through_redis_outages(SimpleWorker.set_state)

    def work(self, burst: bool = False, *args, **kwargs) -> bool:
        if not burst:
            # A process that works until stopped (the Procfile's); a burst worker
            # runs inside another program (tests, bench), whose heap is its own.
            freeze_startup_heap()
        return super().work(burst, *args, **kwargs)

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
        if self._engine is not None:
            # A burst worker may work again (tests): it starts a fresh engine.
            self._engine.close()
            self._engine = None
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
        self._burst = timeout is None
        idle_since = time.monotonic()
        names = [queue.name for queue in self.queues]
        deliveries = [name for name in names if name in DELIVERY_QUEUES]
        others = [name for name in names if name not in DELIVERY_QUEUES]
        while True:
            try:
                found = self._take(deliveries, others, BLOCK_S if timeout else 0)
            except broker.UNAVAILABLE as exc:
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
        # The engine's first claim: as many as its slots take, each workspace
        # its share of them.
        fair = {
            "limit": min(settings.WORKER_BATCH, settings.WORKER_CONCURRENCY),
            "share": settings.WORKER_MAX_SLOTS_PER_WORKSPACE,
        }
        claim = broker.claim(self.name, deliveries, block_s=0, **fair)
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
        claim = broker.claim(self.name, deliveries, others, block_s=block_s, **fair)
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
        if not isinstance(batch, Batch):
            close_old_connections()
            try:
                return super().execute_job(batch, queue)
            finally:
                close_old_connections()
        if self._engine is None:
            names = [q.name for q in self.queues if q.name in DELIVERY_QUEUES]
            self._engine = DeliveryEngine(self.name, names)
        self.set_state(WorkerStatus.BUSY)
        self._engine.run(
            list(batch), lambda: self._stopping, self._run_other, linger=not self._burst
        )
        self.set_state(WorkerStatus.IDLE)

    def _run_other(self) -> None:
        """While the engine runs: keep RQ's registration fresh, and run one job of
        the other queues (the failure webhook) by RQ's own code, if one waits."""
        self.heartbeat()
        others = [q for q in self.queues if q.name not in DELIVERY_QUEUES]
        if not others:
            return
        found = self.queue_class.dequeue_any(
            others,
            None,
            connection=self.connection,
            job_class=self.job_class,
            serializer=self.serializer,
        )
        if found:
            job, queue = found
            self.execute_job(job, queue)
            self.set_state(WorkerStatus.BUSY)
