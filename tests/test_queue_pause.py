"""Pausing a delivery queue: workers claim none of its jobs, which wait in Redis
(due ones on the queue), and every one is delivered once after resume."""

import time

import pytest

from jobs import broker
from jobs.models import AuditEntry, Job
from tests.conftest import wait_for_workers
from tests.support import SMS, basic, post, procfile, queued_ids, status, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
AUTH = basic("ops", "pw")
QUEUE = "/admin/queues/queues/send-sms-queue"
DELAYED_QUEUE = "/admin/queues/queues/scheduled-sms-queue"


@pytest.fixture(autouse=True)
def credentials(settings):
    settings.BULL_BOARD_USERNAME = "ops"
    settings.BULL_BOARD_PASSWORD = "pw"


def sms(client, **extra) -> str:
    return post(client, "/api/schedule-sms", {**SMS, **extra}).json()["jobId"]


def steps(count: int):
    """An `until` for the work fixture that is true after `count` worker passes."""
    done = iter(range(count))
    return lambda: next(done, None) is None


def test_paused_queue_jobs_wait_and_are_delivered_after_resume(
    client, backend, work, redis
):
    for queue in (QUEUE, DELAYED_QUEUE):
        assert client.post(f"{queue}/pause", **AUTH).status_code == 302
    waiting = [sms(client) for _ in range(3)]
    delayed = sms(client, delay=300)
    email = post(
        client,
        "/api/schedule-email",
        {"to": "a@example.com", "subject": "s", "html": "<p>h</p>",
         "contactId": "c", "workspaceId": "w", "delay": 0},
    ).json()["jobId"]  # fmt: skip
    time.sleep(0.4)  # the delayed one falls due, and the scheduler moves it

    # Several full passes (a scheduler move and a burst worker each, about 0.3 s
    # apiece here, more on a busy CI machine): a paused queue's job would be taken
    # in the first.
    work(until=steps(8), timeout=60)

    assert status(email) == "completed"  # other queues keep flowing
    assert backend.to("/send-sms") == []
    assert [status(j) for j in [*waiting, delayed]] == ["waiting"] * 3 + ["delayed"]
    # Nothing lost: the due ones wait on the paused queue, in order.
    assert queued_ids(redis, "send-sms-queue") == waiting
    assert queued_ids(redis, "scheduled-sms-queue") == [delayed]

    for queue in (QUEUE, DELAYED_QUEUE):
        assert client.post(f"{queue}/resume", **AUTH).status_code == 302
    everything = [*waiting, delayed]
    work(until=lambda: all(status(j) == "completed" for j in everything))
    delivered = sorted(c.body["jobId"] for c in backend.to("/send-sms"))
    assert delivered == sorted(everything)
    actions = list(AuditEntry.objects.order_by("at").values_list("action", "queue"))
    assert actions == [
        ("pause queue", "send-sms-queue"),
        ("pause queue", "scheduled-sms-queue"),
        ("resume queue", "send-sms-queue"),
        ("resume queue", "scheduled-sms-queue"),
    ]


def test_a_real_worker_blocked_on_other_queues_takes_a_resumed_queue(
    client, backend, start_process
):
    client.post(f"{QUEUE}/pause", **AUTH)
    start_process("worker", procfile()["worker"])
    wait_for_workers(1)
    job_id = sms(client)

    time.sleep(2)
    assert backend.to("/send-sms") == []
    assert status(job_id) == "waiting"

    client.post(f"{QUEUE}/resume", **AUTH)
    # Within the worker's block time (5 s) on the queues it was watching.
    wait_for(lambda: status(job_id) == "completed", timeout=12)
    assert len(backend.for_job(job_id)) == 1


def test_parked_jobs_of_a_paused_queue_go_back_to_it(client, backend, redis):
    ids = [sms(client) for _ in range(4)]
    # A workspace's share is 1 slot: the claim takes one job and parks the rest.
    first = broker.claim("w1", ["send-sms-queue"], limit=4, share=1)
    assert len(first.deliveries) == 1 and queued_ids(redis, "send-sms-queue") == []
    client.post(f"{QUEUE}/pause", **AUTH)

    again = broker.claim("w2", ["send-sms-queue"], limit=4, share=1)

    assert again.deliveries == []
    assert sorted(queued_ids(redis, "send-sms-queue")) == sorted(ids[1:])


def test_only_delivery_queues_pause(client):
    response = client.post("/admin/queues/queues/my-queue/pause", follow=True, **AUTH)
    assert b"cannot pause" in response.content
    assert not Job.objects.exists() and not AuditEntry.objects.exists()
