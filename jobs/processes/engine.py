"""The delivery engine inside our RQ worker: callbacks flow continuously.

Up to WORKER_CONCURRENCY callbacks are in flight at once, made by the worker's
callbacks process (jobs.processes.callbacks: aiohttp on uvloop, forked when the
engine starts, so that the HTTP work and this process's bookkeeping run on two
cores instead of sharing one interpreter lock). The worker's main thread claims a
job the moment a slot frees (no batch barrier: a slow callback holds one slot and
nothing else), starts its attempt, hands it over, and records outcomes in bulk,
every WORKER_FLUSH_MS or WORKER_FLUSH_MAX outcomes, whichever comes first (one
transaction, one Redis pipeline), on a thread of their own (jobs.processes.recorder)
while the main thread claims on. A workspace holds at most
WORKER_MAX_SLOTS_PER_WORKSPACE slots; its other jobs wait in Redis
(jobs.broker.claim), so one tenant's hanging backend leaves the others flowing.
"""

import logging
import queue
import time
from collections import Counter
from dataclasses import replace

from django.conf import settings
from django.db import close_old_connections

from jobs import broker, delivery, services
from jobs.processes.callbacks import Call, CallbackProcess
from jobs.processes.recorder import Recorder

logger = logging.getLogger(__name__)

# How often free slots look for new jobs while callbacks are in flight (with none
# in flight the engine blocks on the queues instead, and wakes at once).
POLL_S = 0.005
# With nothing in flight and nothing due for this long, hand back to RQ's loop.
IDLE_S = 1.0
# How often a busy engine lets the worker run one job of its other queues (the
# failure webhook: an ordinary RQ job, run by RQ's own code in this thread).
OTHERS_EVERY_S = 1.0
# Put in the outcomes queue when the callbacks process ended unasked.
EXITED = object()
# Outcomes waiting for the recorder, in WORKER_FLUSH_MAX, past which no more is
# claimed: what a killed worker's watchdog hands out again stays bounded.
UNRECORDED_MAX = 4


class DeliveryEngine:
    def __init__(self, worker_name: str, queue_names: list[str]):
        self.worker = worker_name
        self.queues = queue_names
        self.slots = settings.WORKER_CONCURRENCY
        self.share = settings.WORKER_MAX_SLOTS_PER_WORKSPACE
        self.flush_s = settings.WORKER_FLUSH_MS / 1000
        self.flush_max = settings.WORKER_FLUSH_MAX
        # Job id -> its claim and its job, while its callback is in flight.
        self._inflight: dict[str, tuple[broker.Claimed, object]] = {}
        self._held: Counter[str] = Counter()
        self._linger = True
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._finished: list[services.Finished] = []
        self._skipped: list[broker.Claimed] = []
        self._oldest = 0.0
        self._recorder: Recorder | None = None
        self._callbacks = self._start_callbacks()

    # --- the callbacks process ------------------------------------------------------
    def _start_callbacks(self) -> CallbackProcess:
        return CallbackProcess(
            self.slots,
            on_outcomes=lambda batch: self._done.put(batch),
            on_exit=lambda: self._done.put(EXITED),
        )

    def close(self) -> None:
        self._callbacks.close()

    # --- the main thread --------------------------------------------------------------
    def run(self, first: list[broker.Claimed], stopping, others, linger=True) -> int:
        """Deliver `first` and whatever comes after it, until nothing is in flight
        or due for IDLE_S (at once without `linger`: a burst worker), or
        `stopping()` (then no new claims; what is in flight finishes and is
        recorded). `others()` runs one job of the worker's other queues, if there
        is one. Returns how many callbacks were made."""
        self._linger = linger
        close_old_connections()
        # A burst worker records on this thread: it stops once nothing is left,
        # and the thread would buy it nothing.
        self._recorder = Recorder(self.worker) if linger else None
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
                except broker.UNAVAILABLE as exc:
                    # Redis restarting: what is in flight finishes and is recorded
                    # (or found by the watchdog); claims resume in a second.
                    logger.warning("Redis unavailable (%s); claiming again in 1 s", exc)
                    redis_back = time.monotonic() + 1
                made += self._collect(wait=POLL_S if self._inflight else 0)
                if self._inflight:
                    idle_since = time.monotonic()
                elif stop or time.monotonic() - idle_since >= IDLE_S * linger:
                    self._flush(last=True)
                    return made
        finally:
            if self._recorder is not None:
                self._recorder.close()
            close_old_connections()

    def _claim(self) -> None:
        """Fill the free slots; with nothing in flight, block on the queues (a
        job arriving wakes it at once)."""
        free = self.slots - len(self._inflight)
        unrecorded = len(self._finished) + len(self._skipped)
        if free <= 0 or unrecorded >= UNRECORDED_MAX * self.flush_max:
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
        for c, job in started:
            self._inflight[c.job_id] = (c, job)
            self._held[c.workspace] += 1
        if started:
            self._callbacks.send(
                [
                    Call(str(job.id), job.attempts, job.callback_url, job.payload)
                    for _, job in started
                ]
            )
        if skipped and not self._oldest:
            self._oldest = time.monotonic()

    def _collect(self, wait: float) -> int:
        """Take the finished callbacks (waiting up to `wait` for the first), free
        their slots, and record them when the batch is due."""
        got = 0
        try:
            batch = self._done.get(timeout=wait) if wait else self._done.get_nowait()
            while True:
                if batch is EXITED:
                    batch = self._written_off()
                for job_id, outcome in batch:
                    claimed, job = self._inflight[job_id]
                    self._finish(
                        services.Finished(claimed, job, outcome, job.scheduled_for)
                    )
                    got += 1
                batch = self._done.get_nowait()
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

    def _written_off(self) -> list:
        """The callbacks process died: what it had in flight is recorded as lost
        (retried at once; the backend may have had it), and a new one starts."""
        self._callbacks.process.join(1)
        logger.error(
            "the callbacks process exited (code %s); %d attempt(s) lost",
            self._callbacks.process.exitcode,
            len(self._inflight),
        )
        self._callbacks = self._start_callbacks()
        error = "attempt lost: the worker's callbacks process exited"
        return [
            (job_id, replace(delivery.failed_outcome(error), lost=True))
            for job_id in list(self._inflight)
        ]

    def _finish(self, finished: services.Finished) -> None:
        claimed = finished.claimed
        del self._inflight[claimed.job_id]
        self._held[claimed.workspace] -= 1
        if not self._held[claimed.workspace]:
            del self._held[claimed.workspace]
        if not self._finished and not self._skipped:
            self._oldest = time.monotonic()
        self._finished.append(finished)

    def _flush(self, last: bool = False) -> None:
        """Hand what finished to the recorder, unless it is still recording the
        batch before (then this one grows); `last`: and wait until it is recorded."""
        recorder = self._recorder
        if self._finished or self._skipped:
            if recorder is not None and recorder.busy and not last:
                return
            finished, skipped = self._finished, self._skipped
            self._finished, self._skipped, self._oldest = [], [], 0.0
            if recorder is None:
                services.record_outcomes(finished, skipped, worker=self.worker)
            else:
                recorder.record(finished, skipped)
        if last and recorder is not None:
            recorder.wait()
