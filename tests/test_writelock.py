"""jobs.writelock: SQLite writers take turns through an flock next to the file."""

import fcntl
import os
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from jobs import writelock
from jobs.writelock import write_turn

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="other databases take no lock here"
)

HOLD_S = 0.4


def _path() -> str:
    path = writelock._lock_path("default")
    assert path is not None and path.endswith(".write-lock")
    return path


def _held_elsewhere(path: str) -> bool:
    """Whether another process finds the turn taken."""
    probe = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'a')\n"
        "try:\n"
        "    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(3)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, path]).returncode == 3


@pytest.mark.django_db
def test_a_writer_waits_for_another_process_s_turn_and_gets_it_once_freed():
    path = _path()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            f"time.sleep({HOLD_S})\n",
            path,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with write_turn("default"):
        waited = time.monotonic() - started
        assert _held_elsewhere(path)
    holder.wait(timeout=5)
    # It waited for the holder's sleep, and no longer than the exit (no polling).
    assert HOLD_S * 0.5 < waited < HOLD_S + 1
    assert not _held_elsewhere(path)


@pytest.mark.django_db
def test_the_turn_is_reentrant_in_a_thread_and_held_until_the_outer_block_ends():
    path = _path()
    with write_turn("default"):
        with write_turn("default"):
            assert _held_elsewhere(path)
        assert _held_elsewhere(path)
    assert not _held_elsewhere(path)


@pytest.mark.django_db
def test_the_threads_of_one_process_take_turns():
    inside, overlaps = [], []

    def writer():
        with write_turn("default"):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.02)
            inside.pop()

    threads = [threading.Thread(target=writer) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1] * 5


@pytest.mark.django_db
def test_a_forked_child_does_not_share_its_parent_s_turn():
    path = _path()
    with write_turn("default"):
        pid = os.fork()
        if pid == 0:  # the child: its own file, so the parent's flock stops it
            try:
                fcntl.flock(writelock._file(path), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
