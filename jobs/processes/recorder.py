"""The delivery engine's outcomes, recorded on a thread of their own.

Recording a batch (its attempt rows, the jobs' new states, RQ's registries) took
nearly half of the engine's main thread, and while it ran nothing was claimed: the
callbacks process ran dry and a 5,000-callback burst waited on the database
(py-spy: SQLite's UPDATE and COMMIT). SQLite and Redis release Python's lock while
they work, so on this thread the main thread goes on claiming meanwhile. One batch
is recorded at a time; what finishes meanwhile waits for the next, which is then
larger (a group commit that grows with the load). The database takes its writers
in turn (jobs.writelock), so starting attempts and recording others alternate.
"""

import queue
import threading

from django.db import close_old_connections, connections

from jobs import services

_STOP = object()


class Recorder:
    """services.record_outcomes for one worker, one batch at a time."""

    def __init__(self, worker: str):
        self.worker = worker
        self._batches: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="recorder")
        self._thread.start()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def record(self, finished: list, skipped: list) -> None:
        """Record the batch once the one before it is recorded (waits for that)."""
        self.wait()
        self._idle.clear()
        self._batches.put((finished, skipped))

    def wait(self) -> None:
        """Until what was handed over is recorded; an error that recording met is
        raised here, as if it had been recorded on this thread."""
        self._idle.wait()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Record what is left, then end the thread (its database connection
        closed: a test database cannot be dropped while one is open)."""
        self._batches.put(_STOP)
        self._thread.join()
        self.wait()

    def _run(self) -> None:
        try:
            while (batch := self._batches.get()) is not _STOP:
                try:
                    # As Django does around a request: a connection broken by an
                    # error or past DB_CONN_MAX_AGE is replaced, not reused.
                    close_old_connections()
                    services.record_outcomes(*batch, worker=self.worker)
                except BaseException as exc:  # noqa: BLE001 - raised on the main thread
                    self._error = exc
                finally:
                    self._idle.set()
        finally:
            connections.close_all()
