"""One SQLite writer at a time, waiting in the kernel instead of SQLite's busy handler.

SQLite lets one connection write at a time. The others retry in its busy
handler, which sleeps 1, 2, 5, 10 ... 100 ms between tries, so a writer can sit
idle for tens of milliseconds after the lock was freed: two web processes
inserting 1,000-message batches spent about a third of their time so
(bench/batch.py: 7,900-9,200 messages/s without this lock, 11,300-12,600 with).
An flock on a file next to the database hands the turn over the moment it is
released; a thread lock orders the threads of one process (an flock belongs to
an open file, which they share). The kernel drops the flock of a process that
dies. Other databases take no lock here.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

_lock = threading.RLock()
_files: dict[str, object] = {}  # lock path -> its open file, in this process
_depth = 0  # how many write_turn blocks the holding thread is in


@contextmanager
def write_turn(using: str) -> Iterator[None]:
    """Hold the database's write turn (SQLite on a file), reentrant in a thread."""
    path = _lock_path(using)
    if path is None:
        yield
        return
    global _depth
    with _lock:
        if _depth == 0:
            fcntl.flock(_file(path), fcntl.LOCK_EX)
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0:
                fcntl.flock(_file(path), fcntl.LOCK_UN)


def _lock_path(using: str) -> str | None:
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return f"{connection.settings_dict['NAME']}.write-lock"


def _file(path: str):
    if path not in _files:
        _files[path] = open(path, "a")  # noqa: SIM115 (kept open: the lock's handle)
    return _files[path]


def _forget_files() -> None:
    # A forked child shares its parent's open files, and with them the parent's
    # flock: it opens its own.
    global _lock, _depth
    for handle in _files.values():
        handle.close()  # the parent's flock stays: it holds the same open file
    _files.clear()
    _lock, _depth = threading.RLock(), 0


os.register_at_fork(after_in_child=_forget_files)
