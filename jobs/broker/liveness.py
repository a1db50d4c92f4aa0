"""What the watchdog asks Redis: which workers are alive, and which pending jobs
nothing in Redis will ever run."""

from redis.exceptions import RedisError

import jobs.broker.keys as keys
from jobs.broker.connection import redis_connection

# How far into a queue list to look for a queued job (the oldest are at its head).
LPOS_MAXLEN = 200_000


def say_alive(worker: str, ttl_ms: int) -> None:
    """The worker is alive for the next ttl_ms (written from a thread of its own)."""
    try:
        redis_connection().set(keys.worker_alive(worker), "1", px=ttl_ms)
    except RedisError:
        pass


def alive(workers: list[str]) -> list[bool]:
    """For each worker name, whether it said it was alive within its TTL."""
    with redis_connection().pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.exists(keys.worker_alive(worker or ""))
        return [bool(found) for found in pipe.execute()]


def take_watchdog_lock(token: str, ttl_ms: int) -> bool:
    """Whether this pass may run: one watchdog pass at a time across schedulers."""
    return bool(redis_connection().set(keys.WATCHDOG_LOCK, token, nx=True, px=ttl_ms))


def unrunnable(job_ids: list[str]) -> list[bool]:
    """For each job id, whether nothing in Redis will ever run it.

    Gone: no RQ job at all; scheduled but in no schedule; started by a worker that
    is no longer alive; queued but neither on its queue nor parked for its
    workspace's fair share (popped by a worker that then died).
    """
    client = redis_connection()
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), "status", "origin", "worker_name", "workspace")
            pipe.zscore(keys.SCHEDULED, job_id)
        replies = pipe.execute()
    states = list(zip(replies[::2], replies[1::2], strict=True))
    with client.pipeline(transaction=False) as pipe:
        for job_id, ((status, origin, worker, ws), _) in zip(
            job_ids, states, strict=True
        ):
            if status == b"started":
                pipe.exists(keys.worker_alive((worker or b"").decode()))
                pipe.echo("")
            elif status == b"queued" and origin:
                pipe.lpos(keys.queue(origin.decode()), job_id, maxlen=LPOS_MAXLEN)
                parked = keys.parked((ws or b"").decode())
                pipe.lpos(parked, job_id, maxlen=LPOS_MAXLEN)
            else:
                pipe.echo("")
                pipe.echo("")
        replies = pipe.execute()
    # On a queue or parked: either position counts.
    checks = [
        a if a not in (None, b"") else b
        for a, b in zip(replies[::2], replies[1::2], strict=True)
    ]
    gone = []
    for ((status, _, _, _), score), check in zip(states, checks, strict=True):
        if status is None:
            gone.append(True)
        elif status == b"scheduled":
            gone.append(score is None)
        elif status == b"started":
            gone.append(not check)
        elif status == b"queued":
            gone.append(check is None)
        else:
            gone.append(False)
    return gone


def keep_registered(key: str | None, ttl_s: int, tally=None) -> None:
    """Renew a process's registration (its RQ or rq-scheduler key) for ttl_s, with
    its metrics (a jobs.metrics.Tally) in the same round trip."""
    with redis_connection().pipeline(transaction=False) as pipe:
        if key is not None:
            pipe.expire(key, ttl_s)
        if tally is not None:
            tally.write(pipe)
        pipe.execute()
