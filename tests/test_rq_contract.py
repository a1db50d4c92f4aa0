"""What RQ, rq-scheduler and django-rq must still see in the jobs our broker writes.

Pinned to the installed versions: when an upgrade changes RQ's layout, these are
the tests that say so (read jobs/broker/keys.py and scripts.py against the new
sources, then move the pins).
"""

import time
from datetime import UTC, datetime
from importlib.metadata import version

import pytest
from django.urls import reverse
from django_rq.settings import get_queues_list
from django_rq.utils import get_statistics
from rq import SimpleWorker
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from jobs import broker, services
from jobs.models import Job
from jobs.processes.worker import DeliveryWorker
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = {
    "phoneNumber": "+1234567890",
    "message": "contract",
    "contactId": "1",
    "workspaceId": "contract",
}
NOW_QUEUE, LATER_QUEUE = "send-sms-queue", "scheduled-sms-queue"


def test_the_contract_is_pinned_to_these_versions():
    assert version("rq") == "3.0.0"
    assert version("rq-scheduler") == "0.14.0"
    assert version("django-rq") == "4.2.0"


def schedule(delay_ms: int = 0) -> str:
    job, _ = services.job_schedule(
        job_type="sms", payload=dict(PAYLOAD), delay_ms=delay_ms
    )
    return str(job.id)


def rq_job(job_id: str) -> RQJob:
    """The job as RQ's own Job class reads it (JSON, never pickle, as django-rq's
    SERIALIZER setting and `rq --serializer json` read it)."""
    return RQJob.fetch(
        job_id, connection=broker.redis_connection(), serializer=JSONSerializer
    )


def test_a_job_due_now_is_an_rq_job_on_its_queue():
    job_id = schedule()

    job = rq_job(job_id)
    assert (job.origin, job.get_status()) == (NOW_QUEUE, JobStatus.QUEUED)
    assert job.func_name == "jobs.tasks.deliver"
    assert not job.args and not job.kwargs
    assert job.enqueued_at is not None
    assert broker.get_queue(NOW_QUEUE).job_ids == [job_id]


def test_a_delayed_job_is_in_rq_schedulers_set_at_its_due_time():
    job_id = schedule(delay_ms=60_000)
    row = Job.objects.get(pk=job_id)

    job = rq_job(job_id)
    assert (job.origin, job.get_status()) == (LATER_QUEUE, JobStatus.SCHEDULED)
    scheduler = broker.get_scheduler()
    assert job_id in scheduler
    [(listed, at)] = scheduler.get_jobs(with_times=True)
    assert listed.id == job_id
    # rq-scheduler returns naive UTC; ours keeps the microseconds.
    due = at.replace(tzinfo=UTC)
    assert abs((due - row.scheduled_for).total_seconds()) < 0.001
    assert broker.get_queue(LATER_QUEUE).job_ids == []


def test_django_rq_counts_and_lists_what_the_broker_placed(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(user)
    now_id, later_id = schedule(), schedule(delay_ms=60_000)
    index = [q["name"] for q in get_queues_list()].index(NOW_QUEUE)

    queue_page = client.get(reverse("admin:django_rq_jobs", args=[index]))
    assert queue_page.status_code == 200
    assert now_id in queue_page.content.decode()
    scheduler_page = client.get(reverse("admin:django_rq_scheduler_jobs", args=[index]))
    assert scheduler_page.status_code == 200
    assert later_id in scheduler_page.content.decode()
    stats = client.get(reverse("admin:django_rq_home"))
    assert stats.status_code == 200

    counts = {q["name"]: q for q in get_statistics()["queues"]}
    assert counts[NOW_QUEUE]["jobs"] == 1


def stock_worker(queue_names) -> SimpleWorker:
    """RQ's own worker class, no subclass of ours: the plain RQ path."""
    return SimpleWorker(
        [broker.get_queue(name) for name in queue_names],
        connection=broker.redis_connection(),
        serializer=JSONSerializer,
    )


def test_a_stock_rq_worker_delivers_a_broker_job(backend):
    job_id = schedule()

    stock_worker([NOW_QUEUE]).work(burst=True)

    assert [r.path for r in backend.for_job(job_id)] == ["/send-sms"]
    row = Job.objects.get(pk=job_id)
    assert (row.status, row.attempts) == ("completed", 1)
    assert rq_job(job_id).get_status() == JobStatus.FINISHED
    queue = broker.get_queue(NOW_QUEUE)
    assert job_id in FinishedJobRegistry(queue=queue).get_job_ids()


@pytest.mark.usefixtures("fast_retries")
def test_a_stock_rq_worker_retries_at_the_recorded_time_then_fails_for_good(
    backend, settings
):
    settings.JOB_ATTEMPTS = 2
    job_id = schedule()
    backend.plan[job_id] = [500, 500]
    queue = broker.get_queue(NOW_QUEUE)
    worker = stock_worker([NOW_QUEUE, "my-queue"])

    worker.work(burst=True)
    row = Job.objects.get(pk=job_id)
    assert (row.status, row.attempts) == ("delayed", 1)
    # RQ's own retry (its scheduled registry, whole seconds), never before the
    # time the database recorded; our scheduler moves it (no --with-scheduler).
    assert rq_job(job_id).get_status() == JobStatus.SCHEDULED
    scheduler = broker.get_scheduler()

    def second_attempt():
        scheduler.move_due_jobs()
        worker.work(burst=True)
        return len(backend.for_job(job_id, "/send-sms")) == 2

    wait_for(second_attempt, timeout=10, message="the retry")
    first, second = backend.for_job(job_id, "/send-sms")
    assert second.at >= row.scheduled_for.timestamp()
    row = Job.objects.get(pk=job_id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert job_id in FailedJobRegistry(queue=queue).get_job_ids()
    wait_for(
        lambda: worker.work(burst=True) or backend.to("/api/queue-webhook"),
        message="the failure webhook",
    )


def test_our_worker_leaves_rqs_registries_as_rq_would(backend):
    done, refused = schedule(), schedule()
    backend.plan[refused] = [422]
    queue = broker.get_queue(NOW_QUEUE)
    worker = DeliveryWorker([queue], connection=broker.redis_connection())

    worker.work(burst=True)

    assert rq_job(done).get_status() == JobStatus.FINISHED
    assert rq_job(refused).get_status() == JobStatus.FAILED
    assert FinishedJobRegistry(queue=queue).get_job_ids() == [done]
    assert FailedJobRegistry(queue=queue).get_job_ids() == [refused]
    assert StartedJobRegistry(queue=queue).get_job_ids() == []
    assert queue.count == 0


def test_cancel_leaves_nothing_rq_could_run():
    now_id, later_id = schedule(), schedule(delay_ms=60_000)

    for job_id in (now_id, later_id):
        services.job_cancel(job_id=job_id, actor="test")

    assert broker.fetch(now_id) is None and broker.fetch(later_id) is None
    assert broker.get_queue(NOW_QUEUE).job_ids == []
    assert later_id not in broker.get_scheduler()


def test_requeue_of_a_lost_job_gives_rq_one_queued_job():
    job_id = schedule()
    # Lost from Redis (a flush, an old snapshot), overdue in the database.
    broker.redis_connection().flushdb()
    past = datetime(2020, 1, 1, tzinfo=UTC)
    Job.objects.filter(pk=job_id).update(scheduled_for=past)

    assert services.job_requeue_lost(job_id=job_id) is not None

    job = rq_job(job_id)
    assert (job.origin, job.get_status()) == (NOW_QUEUE, JobStatus.QUEUED)
    assert broker.get_queue(NOW_QUEUE).job_ids == [job_id]


def test_promote_and_the_schedulers_move_queue_as_rq_does():
    promoted, moved = schedule(delay_ms=60_000), schedule(delay_ms=1)
    services.job_promote(job_id=promoted, actor="test")
    time.sleep(0.01)
    assert broker.get_scheduler().move_due_jobs() == 1

    for job_id in (promoted, moved):
        job = rq_job(job_id)
        assert job.get_status() == JobStatus.QUEUED and job.enqueued_at is not None
    assert promoted in broker.get_queue(LATER_QUEUE).job_ids
    assert broker.get_scheduler().count() == 0
