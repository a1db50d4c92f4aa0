"""Delayed jobs through real `manage.py rqscheduler` and `rqworker` processes."""

import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue

from jobs.broker import get_scheduler
from jobs.models import Job
from tests.conftest import wait_for_schedulers, wait_for_workers
from tests.support import SMS, post, scheduled_count, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

WORKER = "python manage.py rqworker"
SCHEDULER = "python manage.py rqscheduler --interval 1"


def test_delayed_jobs_fire_never_early_and_within_a_second(
    client, backend, start_process
):
    start_process("worker", WORKER)
    start_process("scheduler", SCHEDULER)
    wait_for_workers(1)
    wait_for_schedulers(1)
    rng = random.Random(7)
    job_ids = [
        post(
            client, "/api/schedule-sms", {**SMS, "delay": rng.randint(300, 2500)}
        ).json()["jobId"]
        for _ in range(40)
    ]

    wait_for(lambda: len(backend.to("/send-sms")) >= len(job_ids), timeout=30)

    due = {str(j.id): j.scheduled_for.timestamp() for j in Job.objects.all()}
    lateness = [call.at - due[call.body["jobId"]] for call in backend.to("/send-sms")]
    assert sorted(c.body["jobId"] for c in backend.to("/send-sms")) == sorted(job_ids)
    assert min(lateness) >= 0, f"a job fired {-min(lateness) * 1000:.1f} ms early"
    assert max(lateness) < 1.0
    print(
        f"lateness ms: p50 {statistics.median(lateness) * 1000:.1f}, "
        f"max {max(lateness) * 1000:.1f}"
    )


def test_an_earlier_job_wakes_a_sleeping_scheduler(client, backend, start_process):
    start_process("worker", WORKER)
    start_process("scheduler", "python manage.py rqscheduler --interval 30")
    wait_for_workers(1)
    wait_for_schedulers(1)
    post(client, "/api/schedule-sms", {**SMS, "delay": 60_000})
    time.sleep(0.5)  # the scheduler now sleeps towards the job due in a minute

    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": 300}).json()["jobId"]

    [call] = wait_for(lambda: backend.for_job(job_id), timeout=5)
    assert call.at - Job.objects.get(pk=job_id).scheduled_for.timestamp() < 0.5


def test_two_schedulers_move_each_due_job_exactly_once(redis, start_process):
    count = 5000
    due = datetime.now(UTC) + timedelta(seconds=4)
    scheduler = get_scheduler()
    job_ids = [str(uuid.uuid4()) for _ in range(count)]
    for job_id in job_ids:
        scheduler.enqueue_at(
            due, "jobs.tasks.deliver", job_id, job_id=job_id, queue_name="my-queue"
        )
    start_process("scheduler-a", SCHEDULER)
    start_process("scheduler-b", SCHEDULER)

    wait_for(lambda: scheduled_count() == 0, timeout=20)

    queued = [
        i.decode()
        for i in redis.lrange(Queue.redis_queue_namespace_prefix + "my-queue", 0, -1)
    ]
    assert len(queued) == count
    assert sorted(queued) == sorted(job_ids)


def test_two_schedulers_deliver_each_job_once(client, backend, start_process):
    for name in ("scheduler-a", "scheduler-b"):
        start_process(name, SCHEDULER)
    start_process("worker", WORKER)
    wait_for_workers(1)
    wait_for_schedulers(2)
    job_ids = [
        post(client, "/api/schedule-sms", {**SMS, "delay": 1000}).json()["jobId"]
        for _ in range(100)
    ]

    wait_for(lambda: len(backend.to("/send-sms")) >= len(job_ids), timeout=30)
    time.sleep(1)

    delivered = [c.body["jobId"] for c in backend.to("/send-sms")]
    assert sorted(delivered) == sorted(job_ids)
