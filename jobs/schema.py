"""Workers and schedulers start before, or while, the release phase migrates.

Rather than fail on "no such table" (and print a traceback a second), they wait
here, quietly after one line, until every migration is applied.
"""

import logging
import time

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

logger = logging.getLogger(__name__)


def unapplied_migrations() -> int:
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def wait_for_schema(interval: float = 0.5) -> None:
    said = False
    while True:
        try:
            missing = unapplied_migrations()
            reason = f"{missing} migration(s) not applied yet"
        except DatabaseError as exc:
            missing, reason = -1, f"database not reachable ({exc})"
        if missing == 0:
            break
        if not said:
            logger.warning("Waiting for the database schema: %s; run migrate.", reason)
            said = True
        time.sleep(interval)
    if said:
        logger.info("Database schema ready.")
    # The worker forks per job batch: start without a connection of ours.
    connection.close()
