"""rq-scheduler without its traps.

Stock rq-scheduler stores due times in whole seconds (jobs fire up to 1 s early),
polls every 60 s, can move a job twice when two schedulers run, pickles every
job and leaks the hash on cancel(). This class keeps its Redis layout (the
``rq:scheduler:scheduled_jobs`` sorted set, so django-rq's pages still list the
jobs) and replaces the parts that matter:

- scores are float seconds, so due times keep sub-millisecond precision;
- a job is released only once its score is <= now: never early;
- due jobs are moved to their queue by one Lua script, so each move is atomic
  and happens exactly once however many schedulers run (no lock needed);
- the scheduler sleeps until the next due job; scheduling an earlier job wakes
  it through pub/sub, so lateness is milliseconds, not the poll interval;
- jobs are created with the JSON serializer (jobs.rq.DeliveryJob).
"""

import logging
import signal
import time
from datetime import UTC, datetime, timedelta

from django_rq.queues import DjangoScheduler
from redis.exceptions import ConnectionError, TimeoutError
from rq.utils import utcformat

from jobs import metrics

SCHEDULED_JOBS_KEY = DjangoScheduler.scheduled_jobs_key
NEXT_WAKE_KEY = "queueservices:scheduler:next_wake"
WAKEUP_CHANNEL = "queueservices:scheduler:wakeup"
MOVE_BATCH = 1000

logger = logging.getLogger(__name__)

# Add a job and wake the scheduler when it is due before the scheduler's
# planned wake-up. Atomic with PLAN_LUA, so no wake-up is ever missed.
SCHEDULE_LUA = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local wake = redis.call('GET', KEYS[2])
if (not wake) or tonumber(ARGV[2]) < tonumber(wake) then
  redis.call('PUBLISH', ARGV[3], ARGV[2])
end
return 1
"""

# SCHEDULE_LUA for many jobs: ARGV[1] the wake-up channel, then id, due pairs.
# One PUBLISH at most (the earliest due), so a batch wakes the scheduler once.
SCHEDULE_MANY_LUA = """
local earliest
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  if (not earliest) or tonumber(ARGV[i + 1]) < tonumber(earliest) then
    earliest = ARGV[i + 1]
  end
end
if not earliest then return 0 end
local wake = redis.call('GET', KEYS[2])
if (not wake) or tonumber(earliest) < tonumber(wake) then
  redis.call('PUBLISH', ARGV[1], earliest)
end
return (#ARGV - 1) / 2
"""

# Record when this scheduler will next look: the earliest due job, at the latest
# now + max_sleep. Returned as a string because Lua numbers become integers.
PLAN_LUA = """
local wake = tonumber(ARGV[1]) + tonumber(ARGV[2])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) < wake then wake = tonumber(first[2]) end
local ttl = math.ceil(tonumber(ARGV[2]) * 1000) + 1000
redis.call('SET', KEYS[2], string.format('%.6f', wake), 'PX', ttl)
return string.format('%.6f', wake)
"""

# Push one job on its queue exactly as Queue.enqueue_job would: status,
# enqueued_at, RPUSH on the queue list, queue registered in rq:queues.
# ARGV[1..4]: enqueued_at, job key prefix, queue key prefix, rq:queues key.
_MOVE_FUNCTION = """
local function move(id)
  local job_key = ARGV[2] .. id
  local origin = redis.call('HGET', job_key, 'origin')
  if not origin then return 0 end
  local queue_key = ARGV[3] .. origin
  redis.call('HSET', job_key, 'status', 'queued', 'enqueued_at', ARGV[1])
  redis.call('RPUSH', queue_key, id)
  redis.call('SADD', ARGV[4], queue_key)
  return 1
end
"""

# Move up to ARGV[6] jobs due by ARGV[5] (now). ZREM and push happen in one
# script, so each job moves exactly once whichever scheduler runs it.
MOVE_LUA = (
    _MOVE_FUNCTION
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5],
                      'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  move(id)
end
return #ids
"""
)

# Move job ARGV[5] now, if it is still scheduled.
PROMOTE_LUA = (
    _MOVE_FUNCTION
    + """
if redis.call('ZREM', KEYS[1], ARGV[5]) == 0 then return 0 end
return move(ARGV[5])
"""
)


def schedule_job_id(client, job_id: str, due: float) -> None:
    """Put a saved RQ job in the scheduled set, due at epoch seconds `due`.

    `client` may be a pipeline, so the job hash and its schedule are written together.
    """
    client.eval(
        SCHEDULE_LUA,
        2,
        SCHEDULED_JOBS_KEY,
        NEXT_WAKE_KEY,
        job_id,
        repr(due),
        WAKEUP_CHANNEL,
    )


def schedule_job_ids(client, dues: dict[str, float]) -> None:
    """schedule_job_id for many saved RQ jobs ({id: due epoch s}) in one script."""
    if not dues:
        return
    pairs = [value for job_id, due in dues.items() for value in (job_id, repr(due))]
    client.eval(
        SCHEDULE_MANY_LUA,
        2,
        SCHEDULED_JOBS_KEY,
        NEXT_WAKE_KEY,
        WAKEUP_CHANNEL,
        *pairs,
    )


class PreciseScheduler(DjangoScheduler):
    def __init__(self, *args, **kwargs):
        from jobs.rq import DeliveryJob

        kwargs["job_class"] = DeliveryJob
        super().__init__(*args, **kwargs)
        self._stopping = False
        self._next_watchdog = 0.0

    # --- scheduling -------------------------------------------------------------
    def enqueue_in(self, time_delta: timedelta, func, *args, **kwargs):
        due = time.time() + time_delta.total_seconds()
        return self._enqueue_at_epoch(due, func, args, kwargs)

    def enqueue_at(self, scheduled_time: datetime, func, *args, **kwargs):
        if scheduled_time.tzinfo is None:
            # rq-scheduler's convention: naive datetimes are UTC.
            scheduled_time = scheduled_time.replace(tzinfo=UTC)
        return self._enqueue_at_epoch(scheduled_time.timestamp(), func, args, kwargs)

    def _enqueue_at_epoch(self, due: float, func, args, kwargs):
        job = self.build_job(func, *args, **kwargs)
        with self.connection.pipeline() as pipe:
            job.save(pipeline=pipe)
            schedule_job_id(pipe, job.id, due)
            pipe.execute()
        return job

    def build_job(self, func, *args, **kwargs):
        """The RQ job enqueue_at would save (status scheduled), not saved yet."""
        retry = kwargs.pop("retry", None)
        job = self._create_job(
            func,
            args=args,
            kwargs=kwargs,
            commit=False,
            id=kwargs.pop("job_id", None),
            timeout=kwargs.pop("timeout", None),
            result_ttl=kwargs.pop("job_result_ttl", None),
            ttl=kwargs.pop("job_ttl", None),
            description=kwargs.pop("job_description", None),
            meta=kwargs.pop("meta", None),
            queue_name=kwargs.pop("queue_name", None),
        )
        if retry is not None:
            job.retries_left = retry.max
            job.retry_intervals = retry.intervals
        return job

    def promote(self, job_id: str) -> bool:
        """Queue a scheduled job now; False if it is no longer in the scheduled set."""
        return bool(self._eval_move(PROMOTE_LUA, job_id))

    def cancel(self, job) -> None:
        # Stock cancel() only removes the id and leaves the hash forever.
        super().cancel(job)
        job.delete(remove_from_queue=False)

    # --- moving due jobs ----------------------------------------------------------
    def move_due_jobs(self) -> int:
        """Move every job due by now to its queue; returns how many moved."""
        moved = 0
        while True:
            count = self._eval_move(MOVE_LUA, repr(time.time()), MOVE_BATCH)
            moved += count
            if count < MOVE_BATCH:
                return moved

    def _eval_move(self, script: str, *args):
        return self.connection.eval(
            script,
            1,
            SCHEDULED_JOBS_KEY,
            utcformat(datetime.now(UTC)),
            self.job_class.redis_job_namespace_prefix,
            self.queue_class.redis_queue_namespace_prefix,
            self.queue_class.redis_queues_keys,
            *args,
        )

    def plan_next_wake(self) -> float:
        wake = self.connection.eval(
            PLAN_LUA,
            2,
            SCHEDULED_JOBS_KEY,
            NEXT_WAKE_KEY,
            repr(time.time()),
            self._interval,
        )
        return float(wake)

    def run(self, burst: bool = False) -> None:
        self.log.info("Scheduler %s started (max sleep %ss)", self.name, self._interval)
        self._install_signal_handlers()
        self.register_birth()
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(WAKEUP_CHANNEL)
            while not self._stopping:
                try:
                    self._pass(pubsub, burst)
                except (ConnectionError, TimeoutError) as exc:
                    self.log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                    time.sleep(1)
                if burst:
                    break
        finally:
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
        with self.connection.pipeline(transaction=False) as pipe:
            if not burst:
                pipe.expire(self.key, int(self._interval) + 10)
            tally.write(pipe)
            pipe.execute()
        if burst:
            return
        wait = self.plan_next_wake() - time.time()
        # Sleep until the next job is due or a new earlier job wakes us.
        if wait > 0 and pubsub.get_message(timeout=wait) is not None:
            while pubsub.get_message(timeout=0) is not None:
                pass

    def _watch(self) -> None:
        """Run the watchdog (jobs.watchdog) every WATCHDOG_INTERVAL_MS."""
        from django.conf import settings

        from jobs import watchdog

        if time.monotonic() < self._next_watchdog:
            return
        self._next_watchdog = time.monotonic() + settings.WATCHDOG_INTERVAL_MS / 1000
        try:
            repaired = watchdog.run_pass(self.connection)
        except (ConnectionError, TimeoutError):
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
        except (ConnectionError, TimeoutError):
            pass
