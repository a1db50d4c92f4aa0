"""Dashboard actions change the Job row and Redis together, and are audited."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rq import Queue
from rq.registry import FailedJobRegistry

from jobs.broker import fetch as fetch_rq_job
from jobs.broker import get_queue
from jobs.models import AuditEntry, Job
from tests.support import EMAIL, SMS, basic, post, scheduled_at, status

pytestmark = pytest.mark.django_db(transaction=True)
AUTH = basic("ops", "pw")


@pytest.fixture(autouse=True)
def credentials(settings):
    settings.BULL_BOARD_USERNAME = "ops"
    settings.BULL_BOARD_PASSWORD = "pw"


def act(client, job_id, action, **fields):
    # As the confirmation page posts it (remove and delete ask first).
    data = {"confirmed": "1", **fields}
    return client.post(
        f"/admin/queues/jobs/{job_id}/{action}", data, follow=True, **AUTH
    )


def queued(redis, name):
    return [
        i.decode()
        for i in redis.lrange(Queue.redis_queue_namespace_prefix + name, 0, -1)
    ]


@pytest.fixture
def failed_job(client, backend, work, settings):
    settings.JOB_ATTEMPTS = 1
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [500]
    work(until=lambda: status(job_id) == "failed")
    return job_id


def test_retry_runs_a_failed_job_again_and_it_completes(
    client, backend, work, failed_job, redis
):
    response = act(client, failed_job, "retry")

    assert response.status_code == 200
    job = Job.objects.get(pk=failed_job)
    assert (job.status, job.attempts, job.max_attempts) == ("waiting", 1, 2)
    assert queued(redis, "send-sms-queue") == [failed_job]
    assert (
        failed_job
        not in FailedJobRegistry(queue=get_queue("send-sms-queue")).get_job_ids()
    )
    work(until=lambda: status(failed_job) == "completed")
    assert [
        c.headers["X-Queue-Attempt"] for c in backend.for_job(failed_job, "/send-sms")
    ] == ["1", "2"]
    [entry] = AuditEntry.objects.all()
    assert (entry.actor, entry.action, entry.job_id) == ("ops", "retry", job.id)


def test_remove_a_delayed_job_clears_redis_and_it_never_fires(
    client, backend, work, redis
):
    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": 300}).json()["jobId"]

    act(client, job_id, "remove")

    assert status(job_id) == "cancelled"
    assert scheduled_at(job_id) is None
    assert fetch_rq_job(job_id) is None
    time.sleep(0.5)
    work(until=lambda: True)
    assert backend.for_job(job_id) == []


def test_remove_a_waiting_job_takes_it_off_the_queue(client, backend, work, redis):
    job_id = post(client, "/api/schedule-email", EMAIL).json()["jobId"]

    act(client, job_id, "remove")

    assert status(job_id) == "cancelled"
    assert queued(redis, "send-email-queue") == []
    work(until=lambda: True)
    assert backend.for_job(job_id) == []


def test_a_removed_job_already_dequeued_is_not_delivered(client, backend, work, redis):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.CANCELLED
    )  # raced the worker
    work(until=lambda: get_queue("send-sms-queue").count == 0)
    assert backend.for_job(job_id) == []


def test_promote_runs_a_delayed_job_now(client, backend, work, redis):
    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": 3_600_000}).json()[
        "jobId"
    ]

    act(client, job_id, "promote")

    assert status(job_id) == "waiting"
    assert scheduled_at(job_id) is None
    assert queued(redis, "scheduled-sms-queue") == [job_id]
    work(until=lambda: status(job_id) == "completed", timeout=5)
    assert len(backend.for_job(job_id)) == 1


@pytest.mark.parametrize(
    ("delay", "action"), [(0, "promote"), (0, "retry"), (60_000, "retry")]
)
def test_illegal_transitions_are_refused_and_change_nothing(
    client, redis, delay, action
):
    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": delay}).json()["jobId"]
    before = status(job_id)

    response = act(client, job_id, action)

    assert b"Cannot" in response.content
    assert status(job_id) == before
    assert AuditEntry.objects.count() == 0


def test_remove_refuses_a_completed_job(client, backend, work):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    work(until=lambda: status(job_id) == "completed")
    response = act(client, job_id, "remove")
    assert b"Cannot cancel a job that is completed" in response.content
    assert status(job_id) == "completed"


def test_retry_all_failed_and_clean_completed(client, backend, work, settings):
    settings.JOB_ATTEMPTS = 1
    failing = [post(client, "/api/schedule-sms", SMS).json()["jobId"] for _ in range(3)]
    for job_id in failing:
        backend.plan[job_id] = [500]
    done = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    work(until=lambda: Job.objects.filter(status="failed").count() == 3)

    url = "/admin/queues/queues/send-sms-queue"
    client.post(f"{url}/retry-failed", {"confirmed": "1"}, **AUTH)
    work(until=lambda: Job.objects.filter(status="completed").count() == 4)
    Job.objects.update(finished_at=timezone.now() - timedelta(hours=2))
    client.post(
        f"{url}/clean-completed", {"older_than_hours": "1", "confirmed": "1"}, **AUTH
    )

    assert Job.objects.count() == 0
    assert not Job.objects.filter(pk=done).exists()
    actions = sorted(AuditEntry.objects.values_list("action", flat=True))
    assert actions == ["clean completed"] + ["retry"] * 3 + ["retry all failed"]
