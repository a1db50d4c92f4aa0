"""The delivery engine inside our RQ worker: callbacks flow continuously.

Up to WORKER_CONCURRENCY callbacks are in flight at once, on one asyncio loop
with aiohttp (a thread of its own: the HTTP waits); the loop is uvloop's, 10-20%
less worker CPU per callback than asyncio's own (bench/drain_workers.py). The
worker's main thread claims a job the moment a slot frees (no batch barrier: a
slow callback holds one slot and nothing else), starts its attempt, and records
outcomes in bulk, every WORKER_FLUSH_MS or WORKER_FLUSH_MAX outcomes, whichever
comes first (one transaction, one Redis pipeline). A workspace holds at most
WORKER_MAX_SLOTS_PER_WORKSPACE slots; its other jobs wait in Redis
(jobs.broker.claim), so one tenant's hanging backend leaves the others flowing.
"""

import asyncio
import logging
import queue
import threading
import time
from collections import Counter

import uvloop
from django.conf import settings
from django.db import close_old_connections
from redis.exceptions import ConnectionError, TimeoutError

from jobs import broker, delivery, services

logger = logging.getLogger(__name__)

# How often free slots look for new jobs while callbacks are in flight (with none
# in flight the engine blocks on the queues instead, and wakes at once).
POLL_S = 0.005
# With nothing in flight and nothing due for this long, hand back to RQ's loop.
IDLE_S = 1.0
# How often a busy engine lets the worker run one job of its other queues (the
# failure webhook: an ordinary RQ job, run by RQ's own code in this thread).
OTHERS_EVERY_S = 1.0


class DeliveryEngine:
    def __init__(self, worker_name: str, queue_names: list[str]):
        self.worker = worker_name
        self.queues = queue_names
        self.slots = settings.WORKER_CONCURRENCY
        self.share = settings.WORKER_MAX_SLOTS_PER_WORKSPACE
        self.flush_s = settings.WORKER_FLUSH_MS / 1000
        self.flush_max = settings.WORKER_FLUSH_MAX
        self._inflight: dict[str, broker.Claimed] = {}
        self._held: Counter[str] = Counter()
        self._linger = True
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._finished: list[services.Finished] = []
        self._skipped: list[broker.Claimed] = []
        self._oldest = 0.0
        self._loop = uvloop.new_event_loop()
        self._session = None
        opened = threading.Event()
        thread = threading.Thread(
            target=self._run_loop, args=(opened,), daemon=True, name="callbacks"
        )
        thread.start()
        # No claim before the session exists: a callback handed to the loop while
        # _open ran would start in that run and find no session (seen under load).
        if not opened.wait(30):
            raise RuntimeError("the callbacks thread did not open its HTTP session")

    # --- the HTTP thread --------------------------------------------------------------
    def _run_loop(self, opened: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._session = self._loop.run_until_complete(self._open())
        opened.set()
        self._loop.run_forever()

    async def _open(self):
        return delivery.http_session_async(self.slots)

    def _call_all(self, started) -> None:
        # In the loop's thread: one task per callback.
        for claimed, job in started:
            self._loop.create_task(self._call(claimed, job))

    async def _call(self, claimed, job) -> None:
        due = job.scheduled_for
        try:
            outcome = await delivery.deliver_job_async(self._session, job)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed attempt
            logger.exception("callback of job %s failed unexpectedly", job.id)
            outcome = delivery.failed_outcome(f"{type(exc).__name__}: {exc}")
        self._done.put(services.Finished(claimed, job, outcome, due))

    def close(self) -> None:
        async def shut():
            if self._session is not None:
                await self._session.close()
            self._loop.stop()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self._loop)

    # --- the main thread --------------------------------------------------------------
    def run(self, first: list[broker.Claimed], stopping, others, linger=True) -> int:
        """Deliver `first` and whatever comes after it, until nothing is in flight
        or due for IDLE_S (at once without `linger`: a burst worker), or
        `stopping()` (then no new claims; what is in flight finishes and is
        recorded). `others()` runs one job of the worker's other queues, if there
        is one. Returns how many callbacks were made."""
        self._linger = linger
        close_old_connections()
        made, idle_since = 0, time.monotonic()
        next_others, redis_back = idle_since + OTHERS_EVERY_S, 0.0
        self._start(first)
        try:
            while True:
                stop = stopping()
                try:
                    if not stop and time.monotonic() >= next_others:
                        others()
                        next_others = time.monotonic() + OTHERS_EVERY_S
                    if not stop and time.monotonic() >= redis_back:
                        self._claim()
                except (ConnectionError, TimeoutError) as exc:
                    # Redis restarting: what is in flight finishes and is recorded
                    # (or found by the watchdog); claims resume in a second.
                    logger.warning("Redis unavailable (%s); claiming again in 1 s", exc)
                    redis_back = time.monotonic() + 1
                made += self._collect(wait=POLL_S if self._inflight else 0)
                if self._inflight:
                    idle_since = time.monotonic()
                elif stop or time.monotonic() - idle_since >= IDLE_S * linger:
                    self._flush()
                    return made
        finally:
            close_old_connections()

    def _claim(self) -> None:
        """Fill the free slots; with nothing in flight, block on the queues (a
        job arriving wakes it at once)."""
        free = self.slots - len(self._inflight)
        if free <= 0:
            return
        busy = self._inflight or self._finished or not self._linger
        block = 0 if busy else POLL_S * 200
        claimed = broker.claim(
            self.worker,
            self.queues,
            limit=min(free, settings.WORKER_BATCH),
            block_s=block,
            share=self.share,
            held=dict(self._held),
        ).deliveries
        self._start(claimed)

    def _start(self, claimed: list[broker.Claimed]) -> None:
        if not claimed:
            return
        started, skipped = services.start_claimed(claimed, worker=self.worker)
        self._skipped += skipped
        for c, _ in started:
            self._inflight[c.job_id] = c
            self._held[c.workspace] += 1
        if started:
            self._loop.call_soon_threadsafe(self._call_all, started)
        if skipped and not self._oldest:
            self._oldest = time.monotonic()

    def _collect(self, wait: float) -> int:
        """Take the finished callbacks (waiting up to `wait` for the first), free
        their slots, and record them when the batch is due."""
        got = 0
        try:
            item = self._done.get(timeout=wait) if wait else self._done.get_nowait()
            while True:
                self._finish(item)
                got += 1
                item = self._done.get_nowait()
        except queue.Empty:
            pass
        pending = len(self._finished) + len(self._skipped)
        if pending and (
            pending >= self.flush_max
            or time.monotonic() - self._oldest >= self.flush_s
            or not self._inflight
        ):
            self._flush()
        return got

    def _finish(self, finished: services.Finished) -> None:
        claimed = self._inflight.pop(finished.claimed.job_id)
        self._held[claimed.workspace] -= 1
        if not self._held[claimed.workspace]:
            del self._held[claimed.workspace]
        if not self._finished and not self._skipped:
            self._oldest = time.monotonic()
        self._finished.append(finished)

    def _flush(self) -> None:
        if not self._finished and not self._skipped:
            return
        finished, skipped = self._finished, self._skipped
        self._finished, self._skipped, self._oldest = [], [], 0.0
        services.record_outcomes(finished, skipped, worker=self.worker)
