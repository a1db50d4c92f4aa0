"""A worker's side of a delivery job: claiming it and recording how it ended, in
RQ's own registries so RQ's tools and django-rq's dashboard see what we do."""

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from rq.utils import utcformat

import jobs.broker.keys as keys
import jobs.broker.scripts as scripts
from jobs.broker.connection import redis_connection
from jobs.broker.placing import Placed

RESULT_TTL_S = 3600
FAILURE_TTL_S = 365 * 24 * 3600
COMPLETED, FAILED = "completed", "failed"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery job claimed by a worker: its id, queue and workspace."""

    job_id: str
    queue: str
    workspace: str = ""

    @property
    def placed(self) -> Placed:
        return Placed(self.job_id, self.queue)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim got: delivery jobs, or one id popped from another queue
    (`other`: queue name, job id) for RQ's usual one-job path."""

    deliveries: list[Claimed]
    other: tuple[str, str] | None = None


def claim(
    worker: str,
    delivery_queues: list[str],
    other_queues: list[str] = (),
    *,
    limit: int,
    block_s: float = 0,
    share: int = 0,
    held: dict[str, int] | None = None,
) -> Claim:
    """Claim up to `limit` jobs from the delivery queues (in order) for `worker`:
    status started, in their queue's started registry until JOB_STALL_TIMEOUT_MS
    (+ a minute) from now. With nothing there and `block_s`, wait that long for a
    job on any of the queues (BLPOP) and claim it.

    `share` > 0: a workspace may hold at most that many of the worker's slots
    (`held`: how many each holds now); its other jobs wait in Redis, in order
    (scripts.CLAIM), for this worker's or another's free slot."""
    fair = (share, held or {})
    found = _claim(worker, delivery_queues, limit, fair)
    if found or not block_s:
        return Claim(found)
    client = redis_connection()
    # Not on a paused queue: its jobs would come straight back (scripts.CLAIM).
    paused = {name.decode() for name in client.smembers(keys.PAUSED_QUEUES)}
    watched = [q for q in [*delivery_queues, *other_queues] if q not in paused]
    if not watched:
        time.sleep(block_s)
        return Claim([])
    # Within the socket timeout: a BLPOP longer than it reads as a dead Redis.
    socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if socket_timeout:
        block_s = max(0.1, min(block_s, socket_timeout - 0.5))
    popped = client.blpop([keys.queue(q) for q in watched], block_s)
    if not popped:
        return Claim([])
    key, job_id = popped[0].decode(), popped[1].decode()
    name = watched[[keys.queue(q) for q in watched].index(key)]
    if name not in delivery_queues:
        return Claim([], other=(name, job_id))
    return Claim(_claim(worker, delivery_queues, limit, fair, first=job_id))


def _claim(worker, queues, limit, fair, first="") -> list[Claimed]:
    if not queues or limit <= 0:
        return []
    share, held = fair
    expires = time.time() + settings.JOB_STALL_TIMEOUT_MS / 1000 + 60
    args = [
        limit, worker, utcformat(datetime.now(UTC)), expires, keys.JOB_PREFIX,
        keys.started(""), share, keys.parked(""), keys.PARKED, first,
        keys.PAUSED_QUEUES, keys.queue(""),
    ]  # fmt: skip
    for workspace, slots in held.items():
        args += [workspace, slots]
    found = scripts.run(
        redis_connection(), scripts.CLAIM, [keys.queue(q) for q in queues], args
    )
    values = json.loads(found) if found else []
    return [
        Claimed(job_id, queue, workspace)
        for queue, job_id, workspace in zip(
            values[::3], values[1::3], values[2::3], strict=True
        )
    ]


def finish(worker: str, ends: dict[Placed, object], tally=None) -> None:
    """Record in RQ's registries how each claimed job ended: COMPLETED (also for
    one not delivered because its row was no longer pending), FAILED, or the epoch
    seconds of its retry (back in the scheduled set). One script (scripts.FINISH)
    and `tally` (jobs.metrics.Tally) in one round trip for the lot."""
    if not ends and tally is None:
        return
    args = [
        worker, utcformat(datetime.now(UTC)), repr(time.time()), RESULT_TTL_S,
        FAILURE_TTL_S, keys.JOB_PREFIX, keys.started(""), keys.finished(""),
        keys.failed(""), keys.WAKEUP_CHANNEL,
    ]  # fmt: skip
    by_queue = defaultdict(list)
    for job, end in ends.items():
        by_queue[job.queue] += [job.job_id, _ENDINGS.get(end) or repr(end)]
    for queue, pairs in by_queue.items():
        args += [queue, " ".join(pairs)]
    with redis_connection().pipeline(transaction=False) as pipe:
        if ends:
            scripts.run(pipe, scripts.FINISH, [keys.SCHEDULED, keys.NEXT_WAKE], args)
        if tally is not None:
            tally.write(pipe)
        pipe.execute()


_ENDINGS = {COMPLETED: "c", FAILED: "f"}
