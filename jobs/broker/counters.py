"""Counters kept in Redis for /metrics, and the rate limit's reserved instants."""

import time

from rq.worker_registration import REDIS_WORKER_KEYS

import jobs.broker.keys as keys
import jobs.broker.scripts as scripts
from jobs.broker.connection import redis_connection

# A second's pointer is kept this long after the second has passed: it is only
# read until then (due times are taken from now on), give or take clock skew.
SLOT_TTL_S = 300


def add_counts(pipe, counts: dict[tuple[str, str], int], sums: dict[str, float]):
    """HINCRBY each (metric, field) by its count, HINCRBYFLOAT each metric's "sum"."""
    for (name, field), n in counts.items():
        pipe.hincrby(keys.metric(name), field, n)
    for name, total in sums.items():
        pipe.hincrbyfloat(keys.metric(name), "sum", total)


def write_counts(tally) -> None:
    """A tally (jobs.metrics.Tally) in a round trip of its own."""
    with redis_connection().pipeline(transaction=False) as pipe:
        tally.write(pipe)
        pipe.execute()


def read_metrics(metric_names: list[str], queue_names: list[str]) -> dict:
    """Everything /metrics shows from Redis, in two round trips: the metric hashes,
    queue lengths and scheduled count, then which registered workers still exist
    (a killed one stays registered a while)."""
    client = redis_connection()
    with client.pipeline(transaction=False) as pipe:
        for name in metric_names:
            pipe.hgetall(keys.metric(name))
        for name in queue_names:
            pipe.llen(keys.queue(name))
        pipe.zcard(keys.SCHEDULED)
        pipe.smembers(REDIS_WORKER_KEYS)
        replies = pipe.execute()
    hashes = replies[: len(metric_names)]
    lengths = replies[len(metric_names) : -2]
    worker_keys = list(replies[-1])
    return {
        "metrics": {
            name: {field.decode(): value for field, value in stored.items()}
            for name, stored in zip(metric_names, hashes, strict=True)
        },
        "queues": dict(zip(queue_names, lengths, strict=True)),
        "scheduled": replies[-2],
        "workers": client.exists(*worker_keys) if worker_keys else 0,
    }


def reserve_slots(workspace_id: str, rate: int, due_us: list[int]) -> list[int]:
    """One instant at or after each due time, at most `rate` a second in the
    workspace (jobs.ratelimit); instants in whole epoch microseconds. One script
    call."""
    now_us = time.time_ns() // 1000
    args = [keys.rate_slots(workspace_id), rate, SLOT_TTL_S, now_us, *due_us]
    raw = scripts.run(redis_connection(), scripts.RESERVE_SLOTS, [], args)
    return [int(value) for value in raw]
