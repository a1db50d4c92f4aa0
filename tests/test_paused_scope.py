"""A paused campaign or workspace also holds the jobs scheduled after the pause."""

import time

import pytest

from jobs.apikeys import apikey_create
from jobs.broker import fetch as fetch_rq_job
from jobs.models import Job, PausedScope
from jobs.services.holds import release_unheld
from tests.support import (
    SMS,
    basic,
    bearer,
    delivered,
    in_redis,
    post,
    schedule,
    status,
    statuses,
)

pytestmark = pytest.mark.django_db(transaction=True)


def message(campaign="spring", workspace="ws-1", delay=300, **metadata):
    return {
        "type": "sms",
        **SMS,
        "delay": delay,
        "workspaceId": workspace,
        "metadata": {"campaignId": campaign, **metadata},
    }


def batch(client, messages):
    response = post(client, "/api/schedule-batch", {"messages": messages})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_jobs_scheduled_for_a_paused_campaign_wait_for_resume(
    client, backend, work, redis
):
    assert client.post("/api/campaigns/spring/pause").json()["changed"] == 0
    # Pausing again keeps the first pause.
    client.post("/api/campaigns/spring/pause")
    assert PausedScope.objects.count() == 1

    single = post(client, "/api/schedule-sms", message()).json()
    keyed = post(
        client, "/api/schedule-sms", message(), HTTP_IDEMPOTENCY_KEY="k-1"
    ).json()
    results = batch(client, [message(), message(campaign="autumn"), message()])
    other = schedule(client, delay=300, campaign="autumn")

    held = [single["jobId"], keyed["jobId"], results[0]["jobId"], results[2]["jobId"]]
    for answer in (single, keyed, results[0], results[2]):
        assert answer["status"] == "paused"
        assert answer["paused"] == {"by": "campaign"}
    assert "status" not in results[1] and "paused" not in results[1]
    assert statuses(held) == ["paused"] * 4
    # As a pause leaves a job: nothing in Redis (resume places it).
    assert not any(in_redis(redis, job_id) for job_id in held)
    assert all(fetch_rq_job(job_id) is None for job_id in held)
    assert client.get(f"/api/job-status/{held[0]}").json()["status"] == "paused"

    # Past their due time: the other campaign's jobs, due with them, go out.
    work(until=lambda: statuses([other, results[1]["jobId"]]) == ["completed"] * 2)
    assert sum(delivered(backend, job_id) for job_id in held) == 0
    assert statuses(held) == ["paused"] * 4

    resumed = client.post("/api/campaigns/spring/resume")

    assert resumed.json() == {"success": True, "changed": 4, "skipped": 0}
    assert not PausedScope.objects.exists()
    assert statuses(held) == ["waiting"] * 4  # overdue: at once
    work(until=lambda: statuses(held) == ["completed"] * 4)
    assert [delivered(backend, job_id) for job_id in held] == [1, 1, 1, 1]
    # After the resume, new jobs of the campaign are not held.
    after = post(client, "/api/schedule-sms", message()).json()
    assert "status" not in after and status(after["jobId"]) == "delayed"


def test_a_paused_workspace_holds_new_jobs_of_every_campaign(
    client, backend, work, redis
):
    client.post("/api/workspaces/ws-1/pause")

    mine = [
        post(client, "/api/schedule-sms", message(campaign=c)).json() for c in ("a", "")
    ]
    [in_batch] = batch(client, [message(campaign="b")])
    theirs = schedule(client, delay=0, campaign="a", workspace="ws-2")

    held = [mine[0]["jobId"], mine[1]["jobId"], in_batch["jobId"]]
    assert [answer["paused"] for answer in (*mine, in_batch)] == [
        {"by": "workspace"}
    ] * 3
    work(until=lambda: status(theirs) == "completed")
    assert statuses(held) == ["paused"] * 3
    assert sum(delivered(backend, job_id) for job_id in held) == 0

    assert client.post("/api/workspaces/ws-1/resume").json()["changed"] == 3
    work(until=lambda: statuses(held) == ["completed"] * 3)
    assert [delivered(backend, job_id) for job_id in held] == [1, 1, 1]


def test_cancel_ends_the_pause(client, backend, work, redis):
    client.post("/api/campaigns/spring/pause")
    held = post(client, "/api/schedule-sms", message(delay=0)).json()["jobId"]

    cancelled = client.post("/api/campaigns/spring/cancel")

    assert cancelled.json() == {"success": True, "changed": 1, "skipped": 0}
    assert status(held) == "cancelled" and fetch_rq_job(held) is None
    assert not PausedScope.objects.exists()
    # The campaign id used again: delivered as usual, never held.
    again = post(client, "/api/schedule-sms", message(delay=0)).json()
    assert "status" not in again
    work(until=lambda: status(again["jobId"]) == "completed")
    assert delivered(backend, again["jobId"]) == 1 and delivered(backend, held) == 0


def test_a_key_limited_to_a_workspace_pauses_the_campaign_there_only(
    client, backend, work, redis
):
    _, key_1 = apikey_create(name="one", workspace_id="ws-1")
    _, key_all = apikey_create(name="all")

    paused = client.post("/api/campaigns/spring/pause", **bearer(key_1))
    assert paused.status_code == 200

    mine = post(client, "/api/schedule-sms", message(), **bearer(key_all)).json()
    theirs = post(
        client, "/api/schedule-sms", message(workspace="ws-2"), **bearer(key_all)
    ).json()
    assert mine["status"] == "paused" and "status" not in theirs
    work(until=lambda: status(theirs["jobId"]) == "completed")
    assert status(mine["jobId"]) == "paused"
    # An unlimited key's resume of the campaign ends every pause of it.
    client.post("/api/campaigns/spring/resume", **bearer(key_all))
    assert not PausedScope.objects.exists()
    work(until=lambda: status(mine["jobId"]) == "completed")


def test_the_worker_holds_a_job_that_slipped_past_the_pause(
    client, backend, work, redis
):
    # A request that checked for a pause just before jobs_pause recorded it, and
    # committed its row after jobs_pause listed the campaign's jobs: the row is
    # waiting and queued, with the pause recorded.
    slipped = schedule(client, delay=0)
    PausedScope.objects.create(
        campaign_id="spring",
        paused_at=Job.objects.get(pk=slipped).created_at,
        actor="api",
    )
    marker = schedule(client, delay=0, campaign="autumn")

    work(until=lambda: status(marker) == "completed")

    assert status(slipped) == "paused" and delivered(backend, slipped) == 0
    assert client.post("/api/campaigns/spring/resume").json()["changed"] == 1
    work(until=lambda: status(slipped) == "completed")
    assert delivered(backend, slipped) == 1


def test_a_held_job_whose_pause_ended_meanwhile_is_released(
    client, backend, work, redis
):
    client.post("/api/campaigns/spring/pause")
    job = Job.objects.get(
        pk=post(client, "/api/schedule-sms", message(delay=0)).json()["jobId"]
    )
    # A resume that deleted the pause and listed its jobs before this row was
    # committed: nothing would ever release it but its writer's second look.
    PausedScope.objects.all().delete()

    release_unheld([job])

    assert job.status == status(job.pk) == "waiting" and in_redis(redis, str(job.pk))
    work(until=lambda: status(job.pk) == "completed")
    assert delivered(backend, str(job.pk)) == 1


def test_the_admin_lists_pauses_read_only(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    client.post("/api/campaigns/spring/pause")
    client.post("/api/workspaces/ws-9/pause")

    response = client.get("/admin/jobs/pausedscope/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "campaign spring" in page and "workspace ws-9" in page
    assert client.get("/admin/jobs/pausedscope/add/").status_code == 403


def test_the_dashboard_overview_shows_pauses(client, settings):
    settings.BULL_BOARD_USERNAME, settings.BULL_BOARD_PASSWORD = "ops", "pw"
    client.post("/api/campaigns/spring/pause")

    response = client.get("/admin/queues", **basic("ops", "pw"))

    assert response.status_code == 200
    assert "campaign spring" in response.content.decode()
    client.post("/api/campaigns/spring/resume")
    page = client.get("/admin/queues", **basic("ops", "pw")).content.decode()
    assert "No campaign or workspace is paused." in page


def test_a_pause_answers_once_every_process_s_copy_of_the_pauses_has_it(client):
    from jobs.services import holds

    # Another web process read the pauses just before this one recorded the pause:
    # its copy (holds._pauses) says there is none. Once the pause has answered,
    # that copy must be too old to use, so the next request there is held.
    read_before = time.monotonic()
    assert holds.holds_for([("spring", "ws-1")], fresh=False) == {}
    assert client.post("/api/campaigns/spring/pause").status_code == 200
    holds._pauses = (read_before, frozenset())  # that other process's copy

    assert holds.holds_for([("spring", "ws-1")], fresh=False) == {
        ("spring", "ws-1"): "campaign"
    }
    answer = post(client, "/api/schedule-sms", message(delay=0)).json()
    assert answer["status"] == "paused" and answer["paused"] == {"by": "campaign"}
