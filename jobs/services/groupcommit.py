"""Group commit: the jobs of concurrent requests written together.

A web process serves many small schedule requests at once (the server's threads).
Each alone would pay a database transaction and a Redis round trip; here the
first request to arrive writes everything that is waiting in one bulk insert
and one Redis transaction, while later arrivals queue behind it and are written
by the next one. Nothing waits for a timer: a request alone is written at once,
and batches grow only when requests really overlap.
"""

import threading
from collections.abc import Callable


class _Entry:
    __slots__ = ("item", "done", "lead", "error")

    def __init__(self, item):
        self.item = item
        self.done = threading.Event()
        self.lead = False
        self.error: BaseException | None = None


class GroupCommit:
    """Run `flush(items)` over the items submitted while another flush ran.

    submit() returns once its item is flushed, or raises the flush's exception
    (every item of a failed flush gets it). At most one flush runs at a time per
    instance; the thread that flushes is always one whose own item is in the batch.
    """

    def __init__(self, flush: Callable[[list], None], max_batch: int = 500):
        self._flush = flush
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Entry] = []
        self._busy = False

    def submit(self, item) -> None:
        entry = _Entry(item)
        with self._lock:
            self._waiting.append(entry)
            entry.lead = not self._busy
            self._busy = True
        if not entry.lead:
            entry.done.wait()
        if entry.lead:
            self._lead()
        if entry.error is not None:
            raise entry.error

    def _lead(self) -> None:
        with self._lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
        error = None
        try:
            self._flush([entry.item for entry in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every submitter
            error = exc
        with self._lock:
            # Hand the lead to the oldest waiter, if any: it flushes what queued up
            # meanwhile, so no request waits for a batch it is not part of.
            if self._waiting:
                successor = self._waiting[0]
                successor.lead = True
                successor.done.set()
            else:
                self._busy = False
        for entry in batch:
            entry.lead = False
            entry.error = error
            entry.done.set()
