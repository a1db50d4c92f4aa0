"""The delivery engine's callbacks, made in a process of their own.

A worker's bookkeeping (claims, attempt rows, RQ's registries) and its HTTP calls
were two threads of one process: one interpreter lock, so one core between them
however many the machine has. The engine forks this process when it starts; here
one aiohttp session on uvloop makes the callbacks the engine hands over and hands
back their outcomes, while the engine's main thread does the bookkeeping on
another core. Work goes over two pipes, in batches: the engine sends Calls, this
process answers (job id, Outcome) pairs.

It ignores SIGINT and SIGTERM (the worker decides when to stop, and what is in
flight finishes), and ends when the engine closes its pipe, or when the worker
dies (the pipe's end of file; what was in flight is then the watchdog's to find).
"""

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import NamedTuple

import uvloop

from jobs import delivery

logger = logging.getLogger(__name__)
READY = "ready"


class Call(NamedTuple):
    """What a callback needs of its job (jobs.delivery reads these attributes)."""

    id: str
    attempts: int
    callback_url: str
    payload: dict


class CallbackProcess:
    """The forked process, and a thread here that receives its outcomes."""

    def __init__(self, slots: int, on_outcomes: Callable, on_exit: Callable):
        context = multiprocessing.get_context("fork")
        calls_in, self._calls = context.Pipe(duplex=False)
        self._outcomes, outcomes_out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_serve,
            args=(calls_in, outcomes_out, slots, (self._calls, self._outcomes)),
            name="callbacks",
        )
        self.process.daemon = True
        self.process.start()
        calls_in.close()
        outcomes_out.close()
        self._closing = False
        # No call before the session exists: the process says when it does.
        if not self._outcomes.poll(30) or self._outcomes.recv() != READY:
            self.process.kill()
            raise RuntimeError("the callbacks process did not open its HTTP session")
        self._receiver = threading.Thread(
            target=self._receive, args=(on_outcomes, on_exit), daemon=True,
            name="outcomes",
        )  # fmt: skip
        self._receiver.start()

    def send(self, calls: list[Call]) -> None:
        self._calls.send(calls)

    def close(self, timeout: float = 30) -> None:
        """No more calls: the process finishes what it has and exits."""
        self._closing = True
        self._calls.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
        self._receiver.join(5)

    def _receive(self, on_outcomes, on_exit) -> None:
        while True:
            try:
                on_outcomes(self._outcomes.recv())
            except (EOFError, OSError):
                break
        if not self._closing:
            on_exit()


# --- the forked process -------------------------------------------------------------
def _serve(calls, outcomes, slots: int, workers_ends) -> None:
    # The fork holds copies of the worker's ends too: with its copy of the calls
    # pipe's writing end open, this process would never see the worker close it.
    for end in workers_ends:
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    code = 0
    try:
        loop.run_until_complete(_callbacks(loop, calls, outcomes, slots))
    except BaseException:  # noqa: BLE001 - said, then the worker writes them off
        logger.exception("the callbacks process failed")
        code = 1
    finally:
        # A fork of the worker: none of its exit handlers (RQ's, Django's) is ours.
        os._exit(code)


async def _callbacks(loop, calls, outcomes, slots: int) -> None:
    session = delivery.http_session_async(slots)
    outcomes.send(READY)
    in_flight: set[asyncio.Task] = set()
    finished: list = []
    closed = asyncio.Event()

    def flush() -> None:
        batch = finished.copy()
        finished.clear()
        try:
            outcomes.send(batch)
        except OSError:
            pass  # the worker is gone: the watchdog finds these attempts

    async def call(job: Call) -> None:
        try:
            outcome = await delivery.deliver_job_async(session, job)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed attempt
            logger.exception("callback of job %s failed unexpectedly", job.id)
            outcome = delivery.failed_outcome(f"{type(exc).__name__}: {exc}")
        finished.append((job.id, outcome))
        if len(finished) == 1:
            loop.call_soon(flush)  # with whatever else finishes in this turn

    def start(batch: list[Call]) -> None:
        for job in batch:
            task = loop.create_task(call(job))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    def receive() -> None:
        # A thread of blocking reads: a message is read whole, which the loop's
        # non-blocking reader would have to reassemble.
        while True:
            try:
                batch = calls.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(closed.set)
                return
            loop.call_soon_threadsafe(start, batch)

    threading.Thread(target=receive, daemon=True, name="calls").start()
    await closed.wait()
    while in_flight:
        await asyncio.wait(set(in_flight))
    await asyncio.sleep(0)  # the last flush
    if finished:
        flush()
    await session.close()
