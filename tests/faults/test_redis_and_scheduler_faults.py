"""Schedulers killed, Redis restarted, down, or flushed."""

import signal
import time

import pytest

from jobs.models import Job
from tests.faults.conftest import SCHEDULER, record
from tests.support import EMAIL, SMS, post, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


def lateness(backend, job_ids) -> list[float]:
    due = {str(j.id): j.due_at.timestamp() for j in Job.objects.filter(pk__in=job_ids)}
    return [c.at - due[c.body["jobId"]] for c in backend.to("/send-sms")]


def test_a_killed_scheduler_leaves_another_in_charge(client, backend, services_on):
    processes = services_on(schedulers=2)
    job_ids = [
        post(client, "/api/schedule-sms", {**SMS, "delay": 1500 + i * 50}).json()[
            "jobId"
        ]
        for i in range(30)
    ]
    processes["scheduler-0"].signal(signal.SIGKILL)

    wait_for(lambda: len(backend.to("/send-sms")) >= len(job_ids), timeout=20)
    late = lateness(backend, job_ids)
    record("scheduler SIGKILL, second scheduler running: max lateness", max(late))
    assert sorted(c.body["jobId"] for c in backend.to("/send-sms")) == sorted(job_ids)
    assert 0 <= min(late) and max(late) < 1.0


def test_a_restarted_scheduler_fires_what_fell_due_while_it_was_down(
    client, backend, services_on, start_process
):
    processes = services_on()
    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": 1000}).json()["jobId"]
    processes["scheduler-0"].signal(signal.SIGKILL)
    time.sleep(2)
    assert backend.for_job(job_id) == []
    restarted = time.time()
    start_process("scheduler-again", SCHEDULER)

    wait_for(lambda: backend.for_job(job_id), timeout=20)
    record(
        "scheduler restarted: due job fired after start",
        backend.for_job(job_id)[0].at - restarted,
    )


def test_pending_jobs_survive_a_redis_restart_and_are_delivered_once(
    client, backend, own_redis, services_on
):
    waiting = [
        post(client, "/api/schedule-sms", SMS).json()["jobId"] for _ in range(10)
    ]
    delayed = [
        post(client, "/api/schedule-email", {**EMAIL, "delay": 2500}).json()["jobId"]
        for _ in range(10)
    ]
    own_redis.stop()
    own_redis.start()  # append-only file replayed

    services_on(REDIS_URL=own_redis.url)

    wait_for(lambda: len(backend.received) >= 20, timeout=20)
    time.sleep(1)
    delivered = sorted(c.body["jobId"] for c in backend.received)
    assert delivered == sorted(waiting + delayed)


def test_workers_and_scheduler_reconnect_after_redis_comes_back(
    client, backend, own_redis, services_on
):
    services_on(REDIS_URL=own_redis.url)
    own_redis.stop()
    assert post(client, "/api/schedule-sms", SMS).status_code == 503
    # Longer than the worker's blocking wait: its heartbeat and maintenance meet the
    # outage too, not only its dequeue.
    time.sleep(7)
    own_redis.start()
    back = time.time()

    now = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    later = post(client, "/api/schedule-sms", {**SMS, "delay": 1000}).json()["jobId"]

    wait_for(lambda: backend.for_job(now) and backend.for_job(later), timeout=90)
    record(
        "Redis down 7 s: first callback after it returned",
        backend.for_job(now)[0].at - back,
    )
    assert len(backend.to("/send-sms")) == 2


def test_watchdog_requeues_jobs_lost_with_a_redis_flush(
    client, backend, own_redis, services_on
):
    services_on(REDIS_URL=own_redis.url, workers=0)
    job_ids = [
        post(client, "/api/schedule-sms", {**SMS, "delay": delay}).json()["jobId"]
        for delay in (0, 0, 500, 1500)
    ]
    own_redis.client().flushall()
    flushed = time.time()

    services_on(REDIS_URL=own_redis.url, schedulers=0)

    wait_for(lambda: len(backend.to("/send-sms")) >= len(job_ids), timeout=30)
    time.sleep(1)
    assert sorted(c.body["jobId"] for c in backend.to("/send-sms")) == sorted(job_ids)
    record(
        "Redis flushed: all lost jobs delivered after",
        max(c.at for c in backend.to("/send-sms")) - flushed,
    )
    assert Job.objects.filter(status="completed").count() == len(job_ids)
