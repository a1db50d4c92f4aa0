"""/metrics: Prometheus text, guarded like the dashboard, fed by every process."""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs import services
from jobs.models import Job
from jobs.processes import watchdog
from tests.conftest import wait_for_schedulers, wait_for_workers
from tests.support import EMAIL, SMS, basic, free_port, post, procfile, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

USER, PASSWORD = "ops", "metrics-pass"


@pytest.fixture(autouse=True)
def credentials(settings):
    settings.BULL_BOARD_USERNAME = USER
    settings.BULL_BOARD_PASSWORD = PASSWORD


def scrape(client) -> dict[tuple, float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    response = client.get("/metrics", **basic(USER, PASSWORD))
    assert response.status_code == 200
    text = response.content.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# --- access --------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, basic(USER, "wrong"), basic("other", PASSWORD), {"HTTP_AUTHORIZATION": "x"}],
    ids=["none", "wrong-password", "wrong-user", "garbage"],
)
def test_metrics_need_the_dashboard_credentials(client, headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert b"queueservices_" not in response.content


def test_right_credentials_get_prometheus_text(client):
    response = client.get("/metrics", **basic(USER, PASSWORD))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE queueservices_delivery_attempts_total counter" in response.content
    assert client.post("/metrics", **basic(USER, PASSWORD)).status_code == 405


def test_a_staff_session_is_let_in_and_a_plain_user_is_not(client, django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(user)
    assert client.get("/metrics").status_code == 401
    user.is_staff = True
    user.save()
    assert client.get("/metrics").status_code == 200


# --- what the workers record ---------------------------------------------------
@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize(
    "worker_class", ["jobs.processes.worker.DeliveryWorker", "rq.SimpleWorker"]
)
def test_attempts_durations_and_lateness_are_counted(
    client, backend, work, settings, worker_class
):
    settings.RQ = {**settings.RQ, "WORKER_CLASS": worker_class}
    ids = {}
    for name, plan in [("ok", []), ("retried", [500]), ("refused", [422])]:
        ids[name] = post(client, "/api/schedule-sms", SMS).json()["jobId"]
        backend.plan[ids[name]] = plan
    ids["slow"] = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[ids["slow"]] = [0.3]  # answers 200 after 0.3 s
    # Every first attempt starts at least this late.
    time.sleep(0.3)

    work(
        until=lambda: (
            Job.objects.filter(status__in=["completed", "failed"]).count() == 4
            and Job.objects.get(pk=ids["refused"]).webhook_status == "delivered"
        )
    )

    samples = scrape(client)
    attempts = {
        outcome: value(
            samples, "queueservices_delivery_attempts_total", outcome=outcome
        )
        for outcome in ("delivered", "retry", "failed", "lost")
    }
    # The failure webhook is not a delivery attempt.
    assert attempts == {"delivered": 3, "retry": 1, "failed": 1, "lost": 0}
    for name in ("callback_duration_seconds", "fire_lateness_seconds"):
        assert value(samples, f"queueservices_{name}_count") == 5
        assert value(samples, f"queueservices_{name}_bucket", le="+Inf") == 5
    # The slow answer is in no bucket below 0.3 s; the four first attempts neither.
    assert (
        value(samples, "queueservices_callback_duration_seconds_bucket", le="0.25") <= 4
    )
    assert value(samples, "queueservices_callback_duration_seconds_sum") >= 0.3
    assert value(samples, "queueservices_fire_lateness_seconds_bucket", le="0.25") <= 1
    assert value(samples, "queueservices_fire_lateness_seconds_sum") >= 4 * 0.3
    jobs = {
        status: value(
            samples, "queueservices_jobs", queue="send-sms-queue", status=status
        )
        for status in ("completed", "failed", "waiting", "paused")
    }
    assert jobs == {"completed": 3, "failed": 1, "waiting": 0, "paused": 0}
    assert value(samples, "queueservices_redis_up") == 1


def test_an_attempt_written_off_by_the_watchdog_counts_as_lost(client, redis):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    # Taken by a worker that is not alive (no alive key): the watchdog's case.
    assert services.jobs_start_attempts(job_ids=[job_id], worker="gone-worker")

    assert watchdog.run_pass()["stalled"] == 1

    samples = scrape(client)
    assert value(samples, "queueservices_delivery_attempts_total", outcome="lost") == 1
    assert value(samples, "queueservices_callback_duration_seconds_count") == 0
    assert value(samples, "queueservices_queue_length", queue="send-sms-queue") == 1


def test_queues_and_scheduled_jobs_are_read_from_redis(client):
    post(client, "/api/schedule-sms", SMS)
    post(client, "/api/schedule-sms", SMS)
    post(client, "/api/schedule-email", {**EMAIL, "delay": 3_600_000})

    samples = scrape(client)
    assert value(samples, "queueservices_queue_length", queue="send-sms-queue") == 2
    assert value(samples, "queueservices_queue_length", queue="send-email-queue") == 0
    assert value(samples, "queueservices_scheduled_jobs") == 1
    assert value(samples, "queueservices_workers") == 0
    delayed = value(
        samples, "queueservices_jobs", queue="scheduled-email-queue", status="delayed"
    )
    assert delayed == 1


def test_without_redis_the_database_figures_are_still_served(client, settings):
    post(client, "/api/schedule-sms", SMS)
    port = free_port()  # nothing listens there
    settings.RQ_QUEUES = {
        name: {**config, "PORT": port} for name, config in settings.RQ_QUEUES.items()
    }
    samples = scrape(client)
    assert value(samples, "queueservices_redis_up") == 0
    assert (
        value(samples, "queueservices_jobs", queue="send-sms-queue", status="waiting")
        == 1
    )
    assert not any(name.startswith("queueservices_workers") for name, _ in samples)


# --- several processes ---------------------------------------------------------
@pytest.mark.processes
def test_the_procfile_worker_and_scheduler_feed_the_metrics(
    client, backend, start_process
):
    commands = procfile()
    start_process("worker", commands["worker"])
    start_process("scheduler", commands["scheduler"])
    wait_for_workers(1)
    wait_for_schedulers(1)

    def passes() -> float:
        return value(scrape(client), "queueservices_scheduler_pass_seconds_count")

    wait_for(lambda: passes() >= 1, timeout=10, message="a scheduler pass")
    job_id = post(client, "/api/schedule-email", {**EMAIL, "delay": 300}).json()[
        "jobId"
    ]

    def delivered() -> float:
        samples = scrape(client)
        outcome = ("queueservices_delivery_attempts_total", (("outcome", "delivered"),))
        return samples[outcome] and samples

    # The worker writes the metrics just after the Job row: wait for them.
    samples = wait_for(delivered, timeout=15, message="the delivery to be counted")
    assert Job.objects.get(pk=job_id).status == "completed"
    assert (
        value(samples, "queueservices_delivery_attempts_total", outcome="delivered")
        == 1
    )
    assert value(samples, "queueservices_workers") == 1
    assert value(samples, "queueservices_fire_lateness_seconds_count") == 1
    # The pass that moved the job came after the first one counted above.
    assert value(samples, "queueservices_scheduler_pass_seconds_count") >= 2
    assert value(samples, "queueservices_scheduler_pass_seconds_sum") > 0
