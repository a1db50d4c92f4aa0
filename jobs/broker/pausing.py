"""Paused queues: a set of names that the worker's claim (scripts.CLAIM) skips.

A paused queue's jobs stay where they are (its list, the scheduled set, parked
lists); the scheduler still moves due ones onto the list, where they wait.
"""

import jobs.broker.keys as keys
from jobs.broker.connection import redis_connection


def pause_queue(name: str) -> bool:
    """Pause `name`; whether it was running."""
    return bool(redis_connection().sadd(keys.PAUSED_QUEUES, name))


def resume_queue(name: str) -> bool:
    """Resume `name`; whether it was paused. Workers blocked on other queues see
    it at their next claim (within the worker's block time)."""
    return bool(redis_connection().srem(keys.PAUSED_QUEUES, name))


def paused_queues() -> set[str]:
    return {name.decode() for name in redis_connection().smembers(keys.PAUSED_QUEUES)}
