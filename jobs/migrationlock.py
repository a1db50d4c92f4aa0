"""One `migrate` at a time per database.

The Procfile's release and web processes both migrate at start; on a fresh database
two concurrent runs would both create the same tables, and the loser crashes. The
second run waits here instead, then finds nothing left to apply.
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Session-level advisory lock key on PostgreSQL: any constant this database's other
# users do not pick ("QSmg").
ADVISORY_LOCK_KEY = 0x51536D67


@contextmanager
def migration_lock(connection) -> Iterator[None]:
    if connection.vendor == "postgresql":
        with _advisory_lock(connection):
            yield
    elif connection.vendor == "sqlite" and not connection.is_in_memory_db():
        with _file_lock(Path(f"{connection.settings_dict['NAME']}.migrate-lock")):
            yield
    else:
        yield


@contextmanager
def _advisory_lock(connection) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # SQLite has no lock that outlives a transaction; an flock next to the file
    # does, and the kernel drops it if the process dies.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
