"""Failed callbacks: exponential backoff, final failure, the failure webhook."""

from datetime import timedelta

import pytest
from rq.job import Job as RQJob
from rq.registry import FailedJobRegistry

from jobs.broker import get_queue, redis_connection
from jobs.models import Job
from tests.support import EMAIL, SMS, post, status

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_retries"),
]


def test_failed_callback_is_retried_with_growing_gaps_then_succeeds(
    client, backend, work
):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [500, 503]

    work(until=lambda: status(job_id) == "completed")

    calls = backend.for_job(job_id)
    assert [c.headers["X-Queue-Attempt"] for c in calls] == ["1", "2", "3"]
    first_gap, second_gap = calls[1].at - calls[0].at, calls[2].at - calls[1].at
    # JOB_BACKOFF_MS=200: waits of at least 200 ms then 400 ms (never shorter); the
    # upper bound only catches a retry that waited for something else.
    assert 0.2 <= first_gap < 0.2 + 2.5
    assert 0.4 <= second_gap < 0.4 + 2.5
    job = Job.objects.get(pk=job_id)
    first, second, _ = job.attempt_log.all()
    assert second.started_at - first.started_at >= timedelta(milliseconds=200)
    assert job.attempts == 3
    assert [a.http_status for a in job.attempt_log.all()] == [500, 503, 200]
    assert backend.to("/api/queue-webhook") == []


def test_retry_waits_are_visible_as_delayed(client, backend, work):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [500]

    work(until=lambda: len(backend.for_job(job_id)) == 1, timeout=5)

    job = Job.objects.get(pk=job_id)
    assert job.status == "delayed"
    assert job.last_error.startswith("HTTP 500")
    assert job.last_http_status == 500
    assert job.scheduled_for > job.attempt_log.get().started_at


def test_permanent_failure_marks_failed_and_calls_the_webhook(client, backend, work):
    job_id = post(client, "/api/schedule-email", EMAIL).json()["jobId"]
    backend.plan[job_id] = [500, 500, 502]

    work(until=lambda: status(job_id) == "failed")

    assert len(backend.for_job(job_id, "/api/email/send")) == 3
    [hook] = backend.for_job(job_id, "/api/queue-webhook")
    assert hook.body["status"] == "failed"
    assert hook.body["error"].startswith("HTTP 502")
    assert hook.body["attempts"] == 3
    assert (hook.body["type"], hook.body["workspaceId"], hook.body["contactId"]) == (
        "email",
        EMAIL["workspaceId"],
        EMAIL["contactId"],
    )
    job = Job.objects.get(pk=job_id)
    assert job.finished_at is not None
    # RQ agrees: the job sits in the failed registry of its queue.
    assert (
        job_id in FailedJobRegistry(queue=get_queue("send-email-queue")).get_job_ids()
    )


def test_unreachable_backend_and_timeouts_are_failed_attempts(
    client, backend, work, settings
):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = ["hang"]  # longer than CALLBACK_TIMEOUT_MS=1000

    work(until=lambda: status(job_id) == "completed")

    first, second = Job.objects.get(pk=job_id).attempt_log.all()
    assert first.http_status is None and "timed out" in first.error
    assert 1000 <= first.duration_ms < 3000
    assert second.http_status == 200


def test_redirects_are_not_followed(client, backend, work):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [302, 302, 302]

    work(until=lambda: status(job_id) == "failed")

    assert len(backend.for_job(job_id, "/send-sms")) == 3


def test_the_attempts_left_are_the_databases_not_the_rq_jobs(client, backend, work):
    # One count of attempts (the row's): the RQ job carries no retry policy of
    # its own that could disagree (a stock worker is told at each failure).
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    rq_job = RQJob.fetch(job_id, connection=redis_connection())
    assert rq_job.retries_left is None and rq_job.retry_intervals is None
    Job.objects.filter(pk=job_id).update(max_attempts=2)
    backend.plan[job_id] = [500, 500, 500]

    work(until=lambda: status(job_id) == "failed")

    assert len(backend.for_job(job_id, "/send-sms")) == 2


def test_retry_after_from_a_busy_backend_is_honoured(client, backend, work):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [(429, {"Retry-After": "1.5"}), (503, {"Retry-After": "1"})]

    work(until=lambda: status(job_id) == "completed", timeout=20)

    calls = backend.for_job(job_id, "/send-sms")
    # Backoff alone would wait 0.2 s and 0.4 s; the backend asked for 1.5 s and 1 s.
    assert calls[1].at - calls[0].at >= 1.5
    assert calls[2].at - calls[1].at >= 1.0


@pytest.mark.parametrize("answer", [422, (400, {"X-Queue-Retry": "false"})])
def test_a_backend_can_refuse_a_message_for_good(client, backend, work, answer):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [answer]

    work(until=lambda: backend.for_job(job_id, "/api/queue-webhook"))

    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts) == ("failed", 1)
    assert len(backend.for_job(job_id, "/send-sms")) == 1


def test_the_failure_webhook_is_retried_and_its_outcome_recorded(client, backend, work):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    # Three failed callbacks (JOB_ATTEMPTS=3), then the webhook fails once.
    backend.plan[job_id] = [500, 500, 500, 503]

    work(until=lambda: Job.objects.get(pk=job_id).webhook_status == "delivered")

    job = Job.objects.get(pk=job_id)
    assert job.webhook_attempts == 2
    assert len(backend.for_job(job_id, "/api/queue-webhook")) == 2


def test_a_webhook_that_never_succeeds_is_recorded_as_failed(
    client, backend, work, settings
):
    settings.WEBHOOK_ATTEMPTS = 2
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [500] * 5

    work(until=lambda: Job.objects.get(pk=job_id).webhook_status == "failed")

    job = Job.objects.get(pk=job_id)
    assert job.webhook_attempts == 2
    assert job.webhook_error.startswith("HTTP 500")
