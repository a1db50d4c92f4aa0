"""Cancel, reschedule, pause and resume over the API, with real Redis and workers."""

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from jobs.apikeys import apikey_create
from jobs.broker import fetch as fetch_rq_job
from jobs.models import AuditEntry, Job
from jobs.processes import watchdog
from tests.support import (
    bearer,
    delivered,
    in_redis,
    queued_ids,
    schedule,
    scheduled_at,
    status,
    statuses,
)

pytestmark = pytest.mark.django_db(transaction=True)
HOUR_MS = 3_600_000


def send(client, method, path, body=None, **extra):
    data = json.dumps(body) if body is not None else ""
    return getattr(client, method)(
        path, data=data, content_type="application/json", **extra
    )


# --- one job ------------------------------------------------------------------------
def test_a_cancelled_job_is_never_delivered(client, backend, work, redis):
    waiting = schedule(client)
    delayed = schedule(client, delay=300)
    marker = schedule(client, delay=300)

    responses = [client.delete(f"/api/jobs/{job_id}") for job_id in (waiting, delayed)]

    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()["status"] for r in responses] == ["cancelled", "cancelled"]
    assert not in_redis(redis, waiting) and not in_redis(redis, delayed)
    assert fetch_rq_job(waiting) is None and fetch_rq_job(delayed) is None
    # The marker was due at the same time: once it is delivered, the other would be.
    work(until=lambda: status(marker) == "completed")
    assert delivered(backend, waiting) == delivered(backend, delayed) == 0
    assert statuses([waiting, delayed]) == ["cancelled", "cancelled"]


def test_cancelling_a_completed_job_is_a_409_and_an_unknown_one_a_404(
    client, backend, work
):
    job_id = schedule(client)
    work(until=lambda: status(job_id) == "completed")

    refused = client.delete(f"/api/jobs/{job_id}")
    unknown = client.delete("/api/jobs/3f0b6c1e-0000-4000-8000-000000000000")

    assert refused.status_code == 409
    assert refused.json()["error"] == "Cannot cancel a job that is completed."
    assert unknown.status_code == 404 and unknown.json()["success"] is False
    assert status(job_id) == "completed"


def test_an_active_job_cannot_be_cancelled_or_rescheduled(client, redis):
    job_id = schedule(client)
    Job.objects.filter(pk=job_id).update(status=Job.Status.ACTIVE)

    assert client.delete(f"/api/jobs/{job_id}").status_code == 409
    patched = send(client, "patch", f"/api/jobs/{job_id}", {"delay": 1000})
    assert patched.status_code == 409
    assert patched.json()["error"] == "Cannot reschedule a job that is active."
    assert status(job_id) == "active"


def test_a_job_rescheduled_earlier_fires_at_its_new_time_not_before(
    client, backend, work, redis
):
    job_id = schedule(client, delay=HOUR_MS)

    response = send(client, "patch", f"/api/jobs/{job_id}", {"delay": 300})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "delayed" and "deliveryAttempts" not in body
    job = Job.objects.get(pk=job_id)
    assert job.due_at == job.scheduled_for
    assert job.scheduled_for < timezone.now() + timedelta(seconds=60)
    assert scheduled_at(job_id) == pytest.approx(job.scheduled_for.timestamp())
    work(until=lambda: status(job_id) == "completed")
    [callback] = backend.for_job(job_id, "/send-sms")
    assert callback.at >= job.scheduled_for.timestamp()
    assert AuditEntry.objects.filter(job_id=job_id, action="reschedule").count() == 1


def test_a_waiting_job_rescheduled_later_leaves_its_queue(client, backend, work, redis):
    job_id = schedule(client)
    marker = schedule(client)

    response = send(client, "patch", f"/api/jobs/{job_id}", {"delay": HOUR_MS})

    assert response.status_code == 200 and response.json()["status"] == "delayed"
    assert queued_ids(redis, "send-sms-queue") == [marker]
    assert scheduled_at(job_id) is not None
    work(until=lambda: status(marker) == "completed")
    assert delivered(backend, job_id) == 0 and status(job_id) == "delayed"


def test_send_at_in_a_time_zone_sets_the_due_time(client, redis):
    job_id = schedule(client, delay=60_000)
    day = (timezone.now() + timedelta(days=40)).date()
    new_york = ZoneInfo("America/New_York")

    response = send(
        client,
        "patch",
        f"/api/jobs/{job_id}",
        {"sendAt": f"{day}T09:00:00", "timezone": "America/New_York"},
    )

    assert response.status_code == 200, response.content
    job = Job.objects.get(pk=job_id)
    assert job.scheduled_for == datetime.combine(day, time(9), new_york)
    assert job.timezone == "America/New_York"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"delay": -1}, "delay"),
        ({"delay": 1.5}, "delay"),
        ({"delay": "10"}, "delay"),
        ({"delay": 10, "sendAt": "2030-01-15T09:00:00Z"}, "body"),
        ({"sendAt": "tomorrow"}, "sendAt"),
        ({"sendAt": "2030-01-15T09:00:00"}, "timezone"),
        ({"sendAt": "2030-01-15T09:00:00", "timezone": "Mars/Base"}, "timezone"),
        ({"delay": 10**15}, "delay"),
        ({"shiftMs": 1000}, "body"),
    ],
)
def test_invalid_reschedules_are_400_and_change_nothing(client, redis, body, field):
    job_id = schedule(client, delay=HOUR_MS)
    before = Job.objects.get(pk=job_id)

    response = send(client, "patch", f"/api/jobs/{job_id}", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["details"]
    after = Job.objects.get(pk=job_id)
    assert (after.status, after.scheduled_for) == (before.status, before.scheduled_for)
    assert scheduled_at(job_id) == pytest.approx(before.scheduled_for.timestamp())
    assert AuditEntry.objects.count() == 0


# --- campaigns and workspaces -------------------------------------------------------
def test_a_paused_campaign_does_not_fire_until_resumed(
    client, backend, work, redis, settings
):
    paused = [schedule(client, delay=300) for _ in range(3)]
    other = schedule(client, delay=300, campaign="autumn")

    response = client.post("/api/campaigns/spring/pause")

    assert response.json() == {"success": True, "changed": 3, "skipped": 0}
    assert statuses(paused) == ["paused"] * 3
    assert not any(in_redis(redis, job_id) for job_id in paused)
    # Past their due time: the other campaign's job, due with them, is delivered.
    work(until=lambda: status(other) == "completed")
    assert sum(delivered(backend, job_id) for job_id in paused) == 0
    # The watchdog, even with no grace, leaves paused jobs alone.
    settings.WATCHDOG_GRACE_MS = 0
    assert watchdog.requeue_lost() == 0
    assert watchdog.recover_stalled() == 0
    assert statuses(paused) == ["paused"] * 3

    resumed = client.post("/api/campaigns/spring/resume/")

    assert resumed.json() == {"success": True, "changed": 3, "skipped": 0}
    assert statuses(paused) == ["waiting"] * 3  # overdue: queued at once
    work(until=lambda: statuses(paused) == ["completed"] * 3)
    assert [delivered(backend, job_id) for job_id in paused] == [1, 1, 1]


def test_pause_and_resume_waiting_jobs(client, backend, work, redis):
    jobs = [schedule(client) for _ in range(3)]
    later = schedule(client, delay=HOUR_MS)

    assert client.post("/api/campaigns/spring/pause").json()["changed"] == 4
    assert queued_ids(redis, "send-sms-queue") == []
    work(until=lambda: True)
    assert sum(delivered(backend, job_id) for job_id in jobs) == 0

    assert client.post("/api/campaigns/spring/resume").json()["changed"] == 4
    # Each id once on its queue (a duplicate could be delivered twice).
    assert sorted(queued_ids(redis, "send-sms-queue")) == sorted(jobs)
    assert status(later) == "delayed"
    assert scheduled_at(later) == pytest.approx(
        Job.objects.get(pk=later).scheduled_for.timestamp()
    )
    work(until=lambda: statuses(jobs) == ["completed"] * 3)
    assert [delivered(backend, job_id) for job_id in jobs] == [1, 1, 1]


def test_resume_rebuilds_rq_jobs_lost_while_paused(client, backend, work, redis):
    jobs = [schedule(client), schedule(client, delay=300)]
    client.post("/api/campaigns/spring/pause")
    redis.flushdb()  # e.g. Redis restarted without persistence

    assert client.post("/api/campaigns/spring/resume").json()["changed"] == 2

    assert all(fetch_rq_job(job_id) is not None for job_id in jobs)
    work(until=lambda: statuses(jobs) == ["completed"] * 2)
    assert [delivered(backend, job_id) for job_id in jobs] == [1, 1]


def test_a_paused_job_can_be_rescheduled_and_stays_paused(client, redis):
    job_id = schedule(client, delay=HOUR_MS)
    client.post("/api/campaigns/spring/pause")

    response = send(client, "patch", f"/api/jobs/{job_id}", {"delay": 2 * HOUR_MS})

    assert response.json()["status"] == "paused"
    assert not in_redis(redis, job_id)
    client.post("/api/campaigns/spring/resume")
    job = Job.objects.get(pk=job_id)
    assert job.status == "delayed"
    assert scheduled_at(job_id) == pytest.approx(job.scheduled_for.timestamp())
    assert job.scheduled_for > timezone.now() + timedelta(milliseconds=HOUR_MS)


def test_a_job_being_delivered_is_skipped(client, redis):
    active = schedule(client)
    Job.objects.filter(pk=active).update(status=Job.Status.ACTIVE)
    waiting = schedule(client)
    done = schedule(client)
    Job.objects.filter(pk=done).update(status=Job.Status.COMPLETED)

    response = client.post("/api/campaigns/spring/cancel")

    assert response.json() == {"success": True, "changed": 1, "skipped": 1}
    assert statuses([active, waiting, done]) == ["active", "cancelled", "completed"]


def test_workspace_operations_touch_only_that_workspace(client, backend, work, redis):
    mine = [
        schedule(client, delay=HOUR_MS, campaign=c, workspace="ws-1")
        for c in ("a", "b")
    ]
    soon = schedule(client, delay=60_000, workspace="ws-1")
    theirs = schedule(client, delay=HOUR_MS, campaign="a", workspace="ws-2")
    before = {j.pk: j.scheduled_for for j in Job.objects.all()}

    shifted = send(
        client, "post", "/api/workspaces/ws-1/reschedule", {"shiftMs": -HOUR_MS + 1000}
    )

    assert shifted.json() == {"success": True, "changed": 3, "skipped": 0}
    after = {j.pk: j for j in Job.objects.all()}
    for job_id in mine:
        job = after[Job.objects.get(pk=job_id).pk]
        assert job.scheduled_for == before[job.pk] - timedelta(
            milliseconds=HOUR_MS - 1000
        )
    # Shifted into the past: due at once, never earlier than the request.
    assert after[Job.objects.get(pk=soon).pk].status == "waiting"
    assert status(theirs) == "delayed"
    work(until=lambda: status(soon) == "completed")

    cancelled = client.post("/api/workspaces/ws-1/cancel")

    assert cancelled.json() == {"success": True, "changed": 2, "skipped": 0}
    assert statuses(mine) == ["cancelled", "cancelled"] and status(theirs) == "delayed"
    assert in_redis(redis, theirs) and not any(in_redis(redis, j) for j in mine)
    assert [fetch_rq_job(job_id) for job_id in mine] == [None, None]
    [entry] = AuditEntry.objects.filter(action="cancel")
    assert entry.actor == "api" and "changed=2" in entry.detail


def test_campaign_reschedule_sets_every_job_to_the_new_time(client, redis):
    jobs = [schedule(client, delay=d) for d in (0, 60_000, HOUR_MS)]

    due = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    response = send(
        client, "post", "/api/campaigns/spring/reschedule", {"sendAt": due.isoformat()}
    )

    assert response.json()["changed"] == 3
    assert {Job.objects.get(pk=j).scheduled_for for j in jobs} == {due}
    assert statuses(jobs) == ["delayed"] * 3
    assert queued_ids(redis, "send-sms-queue") == []
    assert {scheduled_at(j) for j in jobs} == {due.timestamp()}


@pytest.mark.parametrize(
    "body",
    [{}, {"shiftMs": "x"}, {"shiftMs": 1, "delay": 1}, {"sendAt": "soon"},
     {"shiftMs": 5, "timezone": "UTC"}],
)  # fmt: skip
def test_invalid_bulk_reschedules_are_400_and_change_nothing(client, redis, body):
    job_id = schedule(client, delay=HOUR_MS)
    before = Job.objects.get(pk=job_id).scheduled_for

    response = send(client, "post", "/api/campaigns/spring/reschedule", body)

    assert response.status_code == 400, response.content
    assert Job.objects.get(pk=job_id).scheduled_for == before
    assert AuditEntry.objects.count() == 0


def test_a_bad_campaign_id_is_a_400(client):
    assert client.post("/api/campaigns/a%00b/pause").status_code == 400
    assert client.post(f"/api/workspaces/{'w' * 256}/cancel").status_code == 400


def test_a_workspace_key_cannot_touch_another_workspace(client, redis, settings):
    settings.API_KEYS_REQUIRED = "true"
    _, key_1 = apikey_create(name="one", workspace_id="ws-1")
    _, key_all = apikey_create(name="all")
    mine = schedule(client, workspace="ws-1", delay=HOUR_MS, **bearer(key_all))
    theirs = schedule(client, workspace="ws-2", delay=HOUR_MS, **bearer(key_all))

    assert client.post("/api/workspaces/ws-2/pause", **bearer(key_1)).status_code == 403
    assert client.delete(f"/api/jobs/{theirs}", **bearer(key_1)).status_code == 403
    patched = send(
        client, "patch", f"/api/jobs/{theirs}", {"delay": 1}, **bearer(key_1)
    )
    assert patched.status_code == 403
    listed = client.get("/api/jobs?workspaceId=ws-2", **bearer(key_1))
    assert listed.status_code == 403
    # A campaign spans workspaces; the key pauses only its own workspace's jobs.
    paused = client.post("/api/campaigns/spring/pause", **bearer(key_1))
    assert paused.json() == {"success": True, "changed": 1, "skipped": 0}
    assert (status(mine), status(theirs)) == ("paused", "delayed")
    own_list = client.get("/api/jobs?campaignId=spring", **bearer(key_1)).json()
    assert [j["jobId"] for j in own_list["jobs"]] == [mine]
    assert client.post("/api/campaigns/spring/resume").status_code == 401


# --- the worker's guard -------------------------------------------------------------
def test_a_job_paused_after_its_rq_job_was_queued_is_not_delivered(
    client, backend, work, redis
):
    job_id = schedule(client)
    marker = schedule(client)
    # The row changed but the RQ job is still on the queue (a worker raced us).
    Job.objects.filter(pk=job_id).update(status=Job.Status.PAUSED)

    work(until=lambda: status(marker) == "completed")

    assert delivered(backend, job_id) == 0 and status(job_id) == "paused"


# --- listing ------------------------------------------------------------------------
def test_list_counts_and_pages_with_a_cursor(client, redis):
    spring = [schedule(client, delay=HOUR_MS if i % 2 else 0) for i in range(7)]
    schedule(client, campaign="autumn")

    pages, cursor = [], None
    while True:
        query = "/api/jobs?campaignId=spring&limit=3" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = client.get(query).json()
        assert body["count"] == 7
        pages.append([job["jobId"] for job in body["jobs"]])
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [3, 3, 1]
    newest_first = [
        str(pk)
        for pk in Job.objects.filter(campaign_id="spring")
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    ]
    assert sum(pages, []) == newest_first and sorted(newest_first) == sorted(spring)
    delayed = client.get("/api/jobs?campaignId=spring&status=delayed").json()
    assert delayed["count"] == 3 and len(delayed["jobs"]) == 3
    assert {job["status"] for job in delayed["jobs"]} == {"delayed"}
    assert "deliveryAttempts" not in delayed["jobs"][0]
    everything = client.get("/api/jobs?workspaceId=ws-1").json()
    assert everything["count"] == 8 and everything["nextCursor"] is None


@pytest.mark.parametrize(
    "query",
    ["status=bogus", "limit=0", "limit=501", "limit=x", "cursor=garbage",
     "cursor=MjAyNnxub3QtYS11dWlk"],
)  # fmt: skip
def test_list_refuses_bad_parameters(client, query):
    response = client.get(f"/api/jobs?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["success"] is False


def test_get_job_is_job_status(client):
    job_id = schedule(client)
    body = client.get(f"/api/jobs/{job_id}").json()
    assert body["jobId"] == job_id and body["deliveryAttempts"] == []
