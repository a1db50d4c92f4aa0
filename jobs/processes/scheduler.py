"""rq-scheduler without its traps.

Stock rq-scheduler stores due times in whole seconds (jobs fire up to 1 s early),
polls every 60 s, can move a job twice when two schedulers run, pickles every
job and leaks the hash on cancel(). This subclass keeps its Redis layout (its
one sorted set of scheduled jobs, so django-rq's scheduler page still lists the
jobs) and its registration, and replaces the parts that matter (jobs.broker):

- scores are float seconds, so due times keep sub-millisecond precision;
- a job is released only once its score is <= now: never early;
- due jobs are moved to their queue by one Lua script, so each move is atomic
  and happens exactly once however many schedulers run (no lock needed);
- it sleeps until the next due job; scheduling an earlier job wakes it through
  pub/sub, so lateness is milliseconds, not the poll interval;
- it also moves the retries a stock RQ worker puts in RQ's own scheduled
  registries (jobs.tasks.deliver, the failure webhook): no `--with-scheduler`;
- jobs are created with the JSON serializer (jobs.broker.DeliveryJob).
"""

import logging
import signal
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django_rq.queues import DjangoScheduler
from rq.job import JobStatus

from jobs import broker, metrics
from jobs.processes import watchdog

logger = logging.getLogger(__name__)


class PreciseScheduler(DjangoScheduler):
    def __init__(self, *args, interval: float = 60, **kwargs):
        kwargs["job_class"] = broker.DeliveryJob
        super().__init__(*args, interval=interval, **kwargs)
        # The longest sleep between passes (rqscheduler --interval).
        self.max_sleep_s = interval
        self._stopping = False
        self._next_watchdog = 0.0

    # --- scheduling (rq-scheduler's API, for callers of our own) ---------------
    def enqueue_in(self, time_delta: timedelta, func, *args, **kwargs):
        due = time.time() + time_delta.total_seconds()
        return self._enqueue_at_epoch(due, func, args, kwargs)

    def enqueue_at(self, scheduled_time: datetime, func, *args, **kwargs):
        if scheduled_time.tzinfo is None:
            # rq-scheduler's convention: naive datetimes are UTC.
            scheduled_time = scheduled_time.replace(tzinfo=UTC)
        return self._enqueue_at_epoch(scheduled_time.timestamp(), func, args, kwargs)

    def _enqueue_at_epoch(self, due: float, func, args, kwargs):
        # rq-scheduler's own options; what is left are the function's kwargs.
        options = {
            name: kwargs.pop(option, None)
            for name, option in [
                ("job_id", "job_id"), ("timeout", "timeout"),
                ("result_ttl", "job_result_ttl"), ("ttl", "job_ttl"),
                ("description", "job_description"), ("meta", "meta"),
            ]
        }  # fmt: skip
        queue = broker.get_queue(kwargs.pop("queue_name", None) or self.queue_name)
        job = queue.create_job(
            func, args=args, kwargs=kwargs, status=JobStatus.SCHEDULED, **options
        )
        with self.connection.pipeline() as pipe:
            job.save(pipeline=pipe)
            broker.schedule_saved(pipe, {job.id: due})
            pipe.execute()
        return job

    def cancel(self, job) -> None:
        # Stock cancel() only removes the id and leaves the hash forever.
        broker.unplace([broker.Placed(job.id, job.origin)], delete=True)

    # --- moving due jobs ----------------------------------------------------------
    def move_due_jobs(self) -> int:
        """Move every job due by now to its queue; returns how many moved."""
        return broker.move_due(settings.QUEUE_NAMES)

    def run(self, burst: bool = False) -> None:
        self.log.info(
            "Scheduler %s started (max sleep %ss)", self.name, self.max_sleep_s
        )
        self._install_signal_handlers()
        while not self._stopping:
            try:
                self.register_birth()
                break
            except broker.UNAVAILABLE as exc:
                self.log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                time.sleep(1)
        pubsub = None
        try:
            while not self._stopping:
                try:
                    # Subscribed inside the loop: Redis may be down at start too.
                    pubsub = pubsub or broker.wakeups()
                    self._pass(pubsub, burst)
                except broker.UNAVAILABLE as exc:
                    self.log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                    time.sleep(1)
                if burst:
                    break
        finally:
            if pubsub is not None:
                pubsub.close()
            self._register_death_quietly()

    def _pass(self, pubsub, burst: bool) -> None:
        started = time.monotonic()
        moved = self.move_due_jobs()
        if moved:
            self.log.debug("Moved %d due job(s)", moved)
        if not burst:
            self._watch()
        tally = metrics.Tally()
        tally.observe(metrics.SCHEDULER_PASS, time.monotonic() - started)
        # The pass time goes with the keep-alive: no round trip of its own.
        broker.keep_registered(
            None if burst else self.key, int(self.max_sleep_s) + 10, tally
        )
        if burst:
            return
        wait = broker.plan_next_wake(self.max_sleep_s) - time.time()
        # Sleep until the next job is due or a new earlier job wakes us.
        if wait > 0 and pubsub.get_message(timeout=wait) is not None:
            while pubsub.get_message(timeout=0) is not None:
                pass

    def _watch(self) -> None:
        """Run the watchdog every WATCHDOG_INTERVAL_MS."""
        if time.monotonic() < self._next_watchdog:
            return
        self._next_watchdog = time.monotonic() + settings.WATCHDOG_INTERVAL_MS / 1000
        try:
            repaired = watchdog.run_pass()
        except broker.UNAVAILABLE:
            raise
        except Exception:
            # A database hiccup must not stop due jobs from moving.
            self.log.exception("watchdog pass failed")
            return
        if any(repaired.values()):
            self.log.warning("watchdog repaired %s", repaired)

    def _install_signal_handlers(self) -> None:
        def stop(signum, frame):
            self.log.info("Scheduler %s stopping", self.name)
            self._stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def _register_death_quietly(self) -> None:
        try:
            self.register_death()
        except broker.UNAVAILABLE:
            pass
