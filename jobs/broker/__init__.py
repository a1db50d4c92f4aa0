"""The broker: the only code that knows how jobs live in Redis.

Jobs are real RQ jobs in RQ's format (hashes `rq:job:<id>`, queue lists, RQ's
registries) and delayed ones sit in rq-scheduler's sorted set, scored by their
due time in float seconds; our scheduler (jobs.processes.scheduler) moves them
and our worker (jobs.processes.worker) claims them, so django-rq's dashboard and
RQ's own workers and tools keep working (tests/test_rq_contract.py pins that).

Modules: keys (every key name), scripts (every Lua script), connection (the Redis
connection, RQ queues, the scheduler), placing (place, unplace, move what is due,
promote), claiming (claim, finish), pausing (paused queues), liveness (workers
alive, jobs nothing will run), primary (whether the primary changed since the
watchdog last compared), counters (metrics, rate-limit slots).
"""

from jobs.broker.claiming import COMPLETED, FAILED, Claim, Claimed, claim, finish
from jobs.broker.connection import (
    UNAVAILABLE,
    DeliveryJob,
    fetch,
    get_queue,
    get_scheduler,
    live_workers,
    ping,
    redis_connection,
)
from jobs.broker.counters import add_counts, read_metrics, reserve_slots, write_counts
from jobs.broker.liveness import (
    alive,
    keep_registered,
    say_alive,
    take_watchdog_lock,
    unrunnable,
)
from jobs.broker.pausing import pause_queue, paused_queues, resume_queue
from jobs.broker.placing import (
    Placed,
    Placement,
    due_times,
    enqueue_task,
    move_due,
    place,
    plan_next_wake,
    promote,
    replace,
    requeue,
    schedule_saved,
    unplace,
    wakeups,
)
from jobs.broker.primary import mark_reconciled, unreconciled_primary

__all__ = [
    "COMPLETED", "Claim", "Claimed", "DeliveryJob", "FAILED", "Placed", "Placement",
    "UNAVAILABLE", "add_counts", "alive", "claim", "due_times", "enqueue_task", "fetch",
    "finish", "get_queue", "get_scheduler", "keep_registered", "live_workers",
    "mark_reconciled", "move_due", "pause_queue", "paused_queues", "ping", "place",
    "plan_next_wake", "promote", "read_metrics", "redis_connection", "replace",
    "requeue", "reserve_slots", "resume_queue", "say_alive", "schedule_saved",
    "take_watchdog_lock", "unplace", "unreconciled_primary", "unrunnable", "wakeups",
    "write_counts",
]  # fmt: skip
