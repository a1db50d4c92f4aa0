"""Placing delivery jobs in Redis and taking them out again.

A delivery job's RQ job has the Job row's id and no arguments (jobs.tasks.deliver
reads everything from the row): every field of its hash stays under Redis's
64-byte listpack limit, a third of the memory (bench/redis_memory.py), and the
hash is the same for every job but its id, origin, status and times. It is built
once per process by RQ itself (Queue.create_job) and written by one script per
call, for one job or a thousand.
"""

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from redis import Redis
from redis.client import Pipeline
from rq import Retry
from rq.utils import utcformat

import jobs.broker.keys as keys
import jobs.broker.scripts as scripts
from jobs.broker.connection import get_queue, redis_connection

# What a delivery job runs (by name: the broker does not import the services).
DELIVER = "jobs.tasks.deliver"
# The per-job fields PLACE writes itself.
_OWN_FIELDS = {"origin", "status", "created_at", "enqueued_at"}
# Due jobs moved per script call: bounds how long one call holds Redis.
MOVE_BATCH = 1000


class Placement(NamedTuple):
    """Where a job goes: its queue, now (due=None) or at epoch seconds `due`; its
    workspace decides the worker's fair share (jobs.broker.claiming). A tuple: a
    batch makes a thousand (a frozen dataclass took twice as long to build)."""

    job_id: str
    queue: str
    due: float | None = None
    workspace: str = ""


class Placed(NamedTuple):
    """A job already in Redis, to take out: its id and its queue."""

    job_id: str
    queue: str


def rq_job_timeout() -> int:
    # One callback, with room to record it; RQ kills an attempt that hangs longer.
    return int(settings.CALLBACK_TIMEOUT_MS / 1000) + 30


def place(placements: list[Placement], *, pipe: Pipeline | None = None) -> None:
    """Create each job's RQ job and queue it (due now) or schedule it (due later).

    One script; in `pipe` when given (written with the caller's other commands),
    else in one round trip of its own. Placing a job that is already in Redis
    rewrites its hash (a resume, a retry): remove it first (unplace) if it may be
    queued or scheduled still.
    """
    if not placements:
        return
    script = _place_script(rq_job_timeout(), settings.RQ.get("DEFAULT_RESULT_TTL"))
    args = [utcformat(datetime.now(UTC))]
    for job_id, queue, due, workspace in placements:
        args.append(f"{job_id} {queue} {'-' if due is None else repr(due)} {workspace}")
    scripts.run(pipe or redis_connection(), script, _schedule_keys(), args)


def unplace(placed: list[Placed], *, delete: bool, pipe: Pipeline | None = None):
    """Take the jobs off their queue and out of the schedule, so nothing runs them;
    with `delete`, remove their RQ job altogether (hash and registries)."""
    if not placed:
        return
    args = [
        keys.JOB_PREFIX, keys.QUEUE_PREFIX, keys.rq_scheduled(""), keys.failed(""),
        "1" if delete else "0", keys.finished(""), keys.parked(""),
    ]  # fmt: skip
    for job in placed:
        args += [job.job_id, job.queue]
    scripts.run(pipe or redis_connection(), scripts.UNPLACE, [keys.SCHEDULED], args)


def replace(*, removed: list[Placed], deleted: list[Placed], added: list[Placement]):
    """unplace and place in one Redis transaction: what a campaign operation does
    to one chunk of jobs (pause, resume, reschedule, cancel)."""
    with redis_connection().pipeline() as pipe:
        unplace(removed, delete=False, pipe=pipe)
        unplace(deleted, delete=True, pipe=pipe)
        place(added, pipe=pipe)
        pipe.execute()


def requeue(placements: list[Placement]) -> None:
    """Place jobs again from scratch, whatever Redis holds of them now (a job lost
    with a dead worker, or gone from a restored Redis)."""
    placed = [Placed(p.job_id, p.queue) for p in placements]
    replace(removed=[], deleted=placed, added=placements)


def schedule_saved(client: Redis | Pipeline, dues: dict[str, float]) -> None:
    """Put RQ jobs already saved in Redis in the scheduled set ({id: epoch s})."""
    if dues:
        args = [keys.WAKEUP_CHANNEL]
        for job_id, due in dues.items():
            args += [job_id, repr(due)]
        scripts.run(client, scripts.SCHEDULE, _schedule_keys(), args)


def promote(job_id: str) -> bool:
    """Queue a scheduled job now; False if it is no longer in the scheduled set."""
    return bool(_move(scripts.PROMOTE, [keys.SCHEDULED], job_id))


def move_due(queue_names: list[str]) -> int:
    """Move every job due by now to its queue (from our scheduled set, and from
    RQ's own scheduled registries of `queue_names`); returns how many."""
    sets = [keys.SCHEDULED, *(keys.rq_scheduled(name) for name in queue_names)]
    moved = 0
    while True:
        count = _move(scripts.MOVE_DUE, sets, repr(time.time()), MOVE_BATCH)
        moved += count
        if count < MOVE_BATCH:
            return moved


def plan_next_wake(max_sleep_s: float) -> float:
    """Record and return when the scheduler will next look (epoch seconds)."""
    wake = scripts.run(
        redis_connection(),
        scripts.PLAN_WAKE,
        _schedule_keys(),
        [repr(time.time()), max_sleep_s],
    )
    return float(wake)


def wakeups():
    """A pub/sub subscribed to the scheduler's wake-up channel (close it after)."""
    pubsub = redis_connection().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.WAKEUP_CHANNEL)
    return pubsub


def due_times(job_ids: list[str]) -> list[float | None]:
    """Each job's due time in the scheduled set (epoch seconds), None if not there."""
    with redis_connection().pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.zscore(keys.SCHEDULED, job_id)
        return pipe.execute()


def _move(source: str, sets: list[str], *args):
    return scripts.run(
        redis_connection(),
        source,
        sets,
        [
            utcformat(datetime.now(UTC)), keys.JOB_PREFIX, keys.QUEUE_PREFIX,
            keys.QUEUES, *args,
        ],
    )  # fmt: skip


def _schedule_keys() -> list[str]:
    return [keys.SCHEDULED, keys.NEXT_WAKE]


@lru_cache(maxsize=4)
def _place_script(timeout: int, result_ttl: int | None) -> str:
    names = {
        "JOB_PREFIX": keys.JOB_PREFIX, "QUEUE_PREFIX": keys.QUEUE_PREFIX,
        "QUEUES": keys.QUEUES, "CHANNEL": keys.WAKEUP_CHANNEL,
        "FAILED": keys.failed(""), "FINISHED": keys.finished(""),
    }  # fmt: skip
    return scripts.place_script(_template(timeout, result_ttl), names)


@lru_cache(maxsize=4)
def _template(timeout: int, result_ttl: int | None) -> tuple:
    """The fields of a delivery job's RQ hash, as RQ writes them (field, value...)."""
    queue = get_queue(settings.QUEUE_NAMES[0])
    job = queue.create_job(DELIVER, timeout=timeout, result_ttl=result_ttl)
    fields = []
    for field, value in job.to_dict().items():
        if field not in _OWN_FIELDS:
            fields += [field, value]
    return tuple(fields)


def enqueue_task(queue: str, func: str, args: tuple, *, job_id: str, retry_waits=()):
    """An ordinary RQ job (the failure webhook), retried by RQ after each of
    `retry_waits` seconds."""
    retry = (
        Retry(max=len(retry_waits), interval=list(retry_waits)) if retry_waits else None
    )
    get_queue(queue).enqueue_call(func, args=args, job_id=job_id, retry=retry)
