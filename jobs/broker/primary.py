"""Which Redis primary the service writes to, so the watchdog can tell when it
changed: a Sentinel failover, a restart, a flush (jobs.processes.watchdog).

A primary is known by its run id (a random id each redis-server picks at start):
a promoted replica, or a Redis restarted from an old snapshot, has a new one.
Each primary carries the run id it was last reconciled against; a replica copies
its primary's, so a promoted one carries its predecessor's until the watchdog
has compared every pending job with it.
"""

from redis.exceptions import ConnectionError

import jobs.broker.keys as keys
from jobs.broker.connection import redis_connection


def unreconciled_primary() -> str | None:
    """The primary's run id when it was not yet reconciled with the database,
    else None. Raises ConnectionError (after dropping the pool's connections)
    when the server answering is a replica: a demoted primary still connected."""
    client = redis_connection()
    with client.pipeline(transaction=False) as pipe:
        pipe.info("server")
        pipe.info("replication")
        pipe.get(keys.RECONCILED_PRIMARY)
        server, replication, reconciled = pipe.execute()
    if replication.get("role") != "master":
        # With Sentinel the next connection asks the sentinels for the primary.
        client.connection_pool.disconnect()
        raise ConnectionError("the Redis answering is a replica, not the primary")
    run_id = server["run_id"]
    return None if reconciled and reconciled.decode() == run_id else run_id


def mark_reconciled(run_id: str) -> None:
    """Every pending job was compared with the primary `run_id`. Written to
    whichever primary is current: if that is another by now, it stays
    unreconciled and is compared in its turn."""
    redis_connection().set(keys.RECONCILED_PRIMARY, run_id)
