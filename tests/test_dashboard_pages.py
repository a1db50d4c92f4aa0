"""The dashboard's pages and its clean / remove actions, on real rows and Redis."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from jobs.broker import fetch, get_queue
from jobs.models import AuditEntry, Job
from tests.conftest import wait_for_workers
from tests.support import (
    SMS,
    basic,
    post,
    procfile,
    scheduled_ids,
    status,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)
AUTH = basic("ops", "pw")
QUEUE = "/admin/queues/queues/send-sms-queue"


@pytest.fixture(autouse=True)
def credentials(settings):
    settings.BULL_BOARD_USERNAME = "ops"
    settings.BULL_BOARD_PASSWORD = "pw"


def sms(client, **extra) -> str:
    return post(client, "/api/schedule-sms", {**SMS, **extra}).json()["jobId"]


def page(client, url) -> str:
    response = client.get(url, **AUTH)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def failed(client, backend, work, settings):
    """Two jobs failed for good (their webhook delivered), one an hour old."""
    settings.JOB_ATTEMPTS = 1
    ids = [sms(client) for _ in range(2)]
    for job_id in ids:
        backend.plan[job_id] = [500]
    work(until=lambda: all(status(j) == "failed" for j in ids))
    work(until=lambda: all(Job.objects.get(pk=j).webhook_status for j in ids))
    old = timezone.now() - timedelta(hours=2)
    Job.objects.filter(pk=ids[0]).update(finished_at=old)
    return ids


def test_clean_failed_asks_first_with_the_count_then_deletes_rows_and_redis(
    client, failed
):
    old, recent = failed
    data = {"status": "failed", "older_than_hours": "1"}
    asked = client.post(f"{QUEUE}/clean", data, **AUTH).content.decode()

    assert "Delete 1 failed job(s) of send-sms-queue" in asked
    assert Job.objects.count() == 2

    client.post(f"{QUEUE}/clean", {**data, "confirmed": "1"}, **AUTH)
    assert list(Job.objects.values_list("id", flat=True)) == [
        Job.objects.get(pk=recent).pk
    ]
    assert fetch(old) is None
    failed_ids = get_queue("send-sms-queue").failed_job_registry.get_job_ids()
    assert old not in failed_ids and recent in failed_ids
    entry = AuditEntry.objects.get(action="clean failed")
    assert entry.queue == "send-sms-queue" and entry.detail.startswith("1 ")


def test_clean_delayed_takes_them_out_of_the_schedule(client):
    old, new = sms(client, delay=600_000), sms(client, delay=600_000)
    Job.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(hours=3))
    url = "/admin/queues/queues/scheduled-sms-queue/clean-delayed"
    data = {"older_than_hours": "2", "confirmed": "1"}

    client.post(url, data, **AUTH)

    assert list(Job.objects.values_list("id", flat=True)) == [Job.objects.get().pk]
    assert status(new) == "delayed"
    assert scheduled_ids() == [new]


@pytest.mark.parametrize("hours", ["0", "-3", "", "x"])
def test_clean_refuses_less_than_one_hour(client, failed, hours):
    data = {"status": "failed", "older_than_hours": hours, "confirmed": "1"}
    response = client.post(f"{QUEUE}/clean", data, follow=True, **AUTH)

    assert "at least 1" in response.content.decode()
    assert Job.objects.count() == 2


def test_remove_a_finished_job_after_confirming(client, failed):
    job_id = failed[1]
    url = f"/admin/queues/jobs/{job_id}/delete"
    asked = client.post(url, **AUTH).content.decode()
    assert f"Delete job {job_id} (failed" in asked and "1 attempt(s)" in asked
    assert Job.objects.filter(pk=job_id).exists()

    client.post(url, {"confirmed": "1"}, **AUTH)

    assert not Job.objects.filter(pk=job_id).exists()
    assert fetch(job_id) is None
    assert AuditEntry.objects.get(action="remove").detail == f"job {job_id} (failed)"


def test_remove_refuses_a_pending_job(client):
    job_id = sms(client, delay=600_000)
    url = f"/admin/queues/jobs/{job_id}/delete"
    response = client.post(url, {"confirmed": "1"}, follow=True, **AUTH)
    assert "Cannot remove a job that is delayed" in response.content.decode()
    assert status(job_id) == "delayed"


def test_retry_and_clean_show_only_when_there_is_something(client, failed):
    html = page(client, "/admin/queues")
    sms_row = html.split('id="queue-send-sms-queue"')[1].split("</tr>")[0]
    email_row = html.split('id="queue-send-email-queue"')[1].split("</tr>")[0]

    assert "Retry 2 failed" in sms_row and "Clean" in sms_row
    assert 'class="num failures"' in sms_row
    assert "Retry" not in email_row and "Clean" not in email_row
    assert 'min="1"' in sms_row


def test_failed_for_good_job_page(client, failed):
    job_id = failed[1]
    Job.objects.filter(pk=job_id).update(
        payload={**SMS, "metadata": {"campaignId": "spring-sale"}},
        metadata={"campaignId": "spring-sale"},
    )
    html = page(client, f"/admin/queues/jobs/{job_id}")

    assert "Next attempt" not in html and 'id="finished-at"' in html
    assert html.count("spring-sale") == 1
    assert 'id="webhook">delivered, 1 attempt(s)' in html
    assert 'id="delete"' in html and 'id="remove"' not in html


def test_job_list_sorts_by_a_column_and_keeps_the_filters(client):
    later, sooner = sms(client, delay=900_000), sms(client, delay=600_000)
    base = "/admin/queues/jobs?status=delayed"

    ascending = page(client, f"{base}&sort=scheduled")
    descending = page(client, f"{base}&sort=-scheduled")

    assert ascending.index(sooner[-8:]) < ascending.index(later[-8:])
    assert descending.index(later[-8:]) < descending.index(sooner[-8:])
    assert "status=delayed&amp;sort=-scheduled" in ascending
    assert page(client, f"{base}&sort=payload")  # unknown: the default order
    # By finish time only within a finished status (that is what has an index).
    assert 'data-sort="finished"' not in ascending
    assert 'data-sort="finished"' in page(client, "/admin/queues/jobs?status=failed")


def test_ids_are_short_monospace_with_a_copy_button(client):
    job_id = sms(client)
    html = page(client, "/admin/queues/jobs")
    assert f'<code class="id" title="{job_id}">{job_id[-8:]}</code>' in html
    assert f'data-copy="{job_id}"' in html


def test_django_rq_counts_our_delayed_jobs_under_its_scheduler(client):
    for _ in range(3):
        sms(client, delay=600_000)
    staff = User.objects.create_superuser("staff", "s@example.com", "pw")
    client.force_login(staff)

    rq_page = client.get("/admin/django_rq/dashboard/").content.decode()
    ours = page(client, "/admin/queues")

    scheduler = rq_page.split("RQ Scheduler")[1]
    assert ">3</a>" in scheduler
    assert "our delayed jobs (3 now)" in ours and "RQ Scheduler" in ours


@pytest.mark.processes
def test_workers_table_agrees_with_the_last_hour(
    client, backend, start_process, settings
):
    settings.JOB_ATTEMPTS = 1
    start_process("worker", procfile()["worker"], JOB_ATTEMPTS="1")
    wait_for_workers(1)
    ok, bad = sms(client), sms(client)
    backend.plan[bad] = [500]
    wait_for(lambda: (status(ok), status(bad)) == ("completed", "failed"))

    html = page(client, "/admin/queues")

    assert 'id="stat-completed">1<' in html and 'id="stat-failed">1<' in html
    row = html.split('<table id="workers">')[1].split("</tr>")[1]
    cells = [c.split("</td>")[0].rsplit(">", 1)[-1] for c in row.split("<td")[1:]]
    assert cells[-2:] == ["1", "1"]


def test_the_live_refresh_may_reuse_finished_counts_a_page_load_never_does(
    client, failed
):
    # Counting every finished job on each 2-second refresh took 0.5-0.9 s with
    # 1,000,000 jobs: the refresh reuses the process's last count for 10 s; the
    # pending counts and any page load are always exact.
    from jobs import stats

    queue = "send-sms-queue"
    assert stats.queue_counts([queue])[queue]["failed"] == 2
    Job.objects.filter(pk=failed[0]).update(status="completed")
    reused = stats.queue_counts([queue], finished_max_age_s=10)[queue]
    assert (reused["failed"], reused["completed"]) == (2, 0)
    exact = stats.queue_counts([queue])[queue]
    assert (exact["failed"], exact["completed"]) == (1, 1)
