"""The delivery engine in a real Procfile worker process: callbacks flow past a
slow one, a workspace holds at most its share of the slots, a stop finishes
what is in flight."""

import os
import signal
import time

import pytest

from jobs.models import Job
from tests.conftest import wait_for_workers
from tests.support import SMS, post, procfile, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


def worker(start_process, **env):
    process = start_process("worker", procfile()["worker"], **env)
    wait_for_workers(1)
    return process


def sms(client, workspace: str) -> str:
    return post(client, "/api/schedule-sms", {**SMS, "workspaceId": workspace}).json()[
        "jobId"
    ]


def test_callbacks_flow_past_a_hanging_one(client, backend, start_process):
    hanging = [sms(client, "A") for _ in range(10)]
    for job_id in hanging:
        backend.plan[job_id] = ["hang"]  # 5 s before the backend answers
    worker(start_process)
    wait_for(lambda: len(backend.to("/send-sms")) == 10, timeout=10)

    scheduled_at = time.time()
    others = [sms(client, "B") for _ in range(50)]

    wait_for(lambda: all(backend.for_job(j) for j in others), timeout=5)
    last = max(backend.for_job(j)[0].at for j in others)
    print(f"50 SMS of B delivered {last - scheduled_at:.3f} s after scheduling")
    assert last - scheduled_at < 1.0
    # A's callbacks were hanging all along: nothing waited for them.
    wait_for(
        lambda: Job.objects.filter(pk__in=hanging, status="completed").count() == 10,
        timeout=15,
    )
    answered = Job.objects.filter(pk__in=hanging).values_list("finished_at", flat=True)
    assert min(at.timestamp() for at in answered) > last


def test_a_workspace_holds_at_most_its_share_of_the_slots(
    client, backend, start_process
):
    hogs = [sms(client, "A") for _ in range(20)]
    for job_id in hogs:
        backend.plan[job_id] = [1.5]
    worker(start_process, WORKER_CONCURRENCY="10", WORKER_MAX_SLOTS_PER_WORKSPACE="4")
    wait_for(lambda: len(backend.to("/send-sms")) >= 4, timeout=10)
    time.sleep(0.3)
    # Four of A's in flight; the other sixteen wait in Redis, not in the worker.
    assert len(backend.to("/send-sms")) == 4
    assert Job.objects.filter(pk__in=hogs, status="active").count() == 4
    assert Job.objects.filter(pk__in=hogs, status="waiting").count() == 16

    scheduled_at = time.time()
    others = [sms(client, "B") for _ in range(5)]
    wait_for(lambda: all(backend.for_job(j) for j in others), timeout=5)
    assert max(backend.for_job(j)[0].at for j in others) - scheduled_at < 1.0

    # A's jobs all go out in the end, four at a time, each once, in order.
    wait_for(
        lambda: Job.objects.filter(pk__in=hogs, status="completed").count() == 20,
        timeout=20,
    )
    calls = [c for c in backend.to("/send-sms") if c.body["jobId"] in hogs]
    assert sorted(c.body["jobId"] for c in calls) == sorted(hogs)
    firsts = [c.body["jobId"] for c in sorted(calls, key=lambda c: c.at)]
    # Claimed in the order they were scheduled (within a batch of 4, any order).
    assert [set(firsts[i : i + 4]) for i in range(0, 20, 4)] == [
        set(hogs[i : i + 4]) for i in range(0, 20, 4)
    ]


def test_sigterm_finishes_what_is_in_flight_and_claims_nothing_new(
    client, backend, start_process, settings
):
    slow = [sms(client, "A") for _ in range(5)]
    for job_id in slow:
        backend.plan[job_id] = [2.0]
    process = worker(start_process)
    wait_for(lambda: len(backend.to("/send-sms")) == 5, timeout=10)

    stopped_at = time.time()
    process.signal(signal.SIGTERM)
    time.sleep(0.2)
    later = sms(client, "B")
    process.process.wait(settings.CALLBACK_TIMEOUT_MS / 1000 + 2)

    print(f"worker exited {time.time() - stopped_at:.2f} s after SIGTERM")
    assert process.process.returncode == 0
    assert Job.objects.filter(pk__in=slow, status="completed").count() == 5
    assert Job.objects.get(pk=later).status == "waiting"
    assert backend.for_job(later) == []


def test_an_idle_worker_waits_past_the_redis_socket_timeout(
    client, backend, start_process, settings
):
    # Its blocking wait for jobs must stay within the client's socket timeout
    # (3 s), or RQ reads the wait as a dead Redis and the worker quits.
    process = worker(start_process)
    timeout = settings.REDIS["REDIS_CLIENT_KWARGS"]["socket_timeout"]
    time.sleep(timeout + 2)
    job_id = sms(client, "A")

    wait_for(lambda: backend.for_job(job_id), timeout=5)
    assert process.process.poll() is None


def test_the_engine_opens_its_http_session_before_it_takes_a_job():
    # CI once saw the first callbacks of a worker fail with "'NoneType' object has
    # no attribute 'post'": they were handed over while the session was still being
    # opened. The engine is usable only once its callbacks process says it is ready.
    from jobs.processes.engine import DeliveryEngine

    for _ in range(5):
        engine = DeliveryEngine("w", ["send-sms-queue"])
        try:
            assert engine._callbacks.process.is_alive()
        finally:
            engine.close()
        assert not engine._callbacks.process.is_alive()


def callbacks_pid(worker_process) -> int:
    """The worker's callbacks process (jobs.processes.callbacks), once it runs."""
    from tests.support import descendants

    found = []

    def forked():
        found[:] = descendants(worker_process.process.pid)
        return bool(found)

    wait_for(forked, timeout=10)
    return found[-1]


def test_a_killed_callbacks_process_loses_its_attempts_and_is_replaced(
    client, backend, start_process
):
    from jobs.models import JobAttempt

    slow = [sms(client, "A") for _ in range(3)]
    for job_id in slow:
        backend.plan[job_id] = [2.0]  # answered 2 s later: in flight when killed
    process = worker(start_process)
    # The retries are due at once: the scheduler queues them.
    start_process("scheduler", procfile()["scheduler"])
    wait_for(lambda: len(backend.to("/send-sms")) == 3, timeout=10)
    first = callbacks_pid(process)
    os.kill(first, signal.SIGKILL)

    # Each in-flight attempt is written off as lost and made again at once by a
    # new callbacks process; the worker itself carries on.
    wait_for(
        lambda: Job.objects.filter(pk__in=slow, status="completed").count() == 3,
        timeout=15,
    )
    for job_id in slow:
        attempts = JobAttempt.objects.filter(job_id=job_id).order_by("number")
        assert [a.succeeded for a in attempts] == [False, True]
        assert "callbacks process exited" in attempts[0].error
    assert process.process.poll() is None
    assert callbacks_pid(process) != first
    later = sms(client, "B")
    wait_for(lambda: backend.for_job(later), timeout=5)


def test_the_callbacks_process_ends_with_its_worker(client, backend, start_process):
    from tests.support import running

    process = worker(start_process)
    job_id = sms(client, "A")
    wait_for(lambda: backend.for_job(job_id), timeout=10)
    child = callbacks_pid(process)
    process.process.kill()
    # The pipe's end of file: nothing is left behind by a worker killed outright.
    wait_for(lambda: not running(child), timeout=10)
