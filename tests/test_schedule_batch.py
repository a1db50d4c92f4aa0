"""POST /api/schedule-batch: per-message results, atomic batches, bulk Redis writes."""

import json
import re
import time as time_module
from datetime import time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from jobs.apikeys import apikey_create
from jobs.broker.keys import WAKEUP_CHANNEL
from jobs.models import Job, Workspace
from jobs.services import BatchItem, jobs_schedule_batch
from jobs.services.holds import forget_cached_pauses
from tests.support import (
    EMAIL,
    SMS,
    free_port,
    post,
    queued_ids,
    queues_on,
    scheduled_at,
    scheduled_ids,
    wait_for,
)

pytestmark = pytest.mark.django_db

URL = "/api/schedule-batch"
SMS_ITEM = {"type": "sms", **SMS}
EMAIL_ITEM = {"type": "email", **EMAIL}


def batch(client, messages, atomic=None, **headers):
    body = {"messages": messages}
    if atomic is not None:
        body["atomic"] = atomic
    return post(client, URL, body, **headers)


def test_valid_messages_are_scheduled_and_invalid_ones_reported_by_index(client, redis):
    messages = [
        SMS_ITEM,
        {**SMS_ITEM, "phoneNumber": "555-1234"},
        {**EMAIL_ITEM, "delay": 60_000},
        {**EMAIL_ITEM, "to": "nobody", "html": ""},
        "not an object",
        {**SMS_ITEM, "type": "fax"},
    ]

    response = batch(client, messages)

    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["scheduled"], body["failed"]) == (True, 2, 4)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert set(results[1]["errors"]) == {"phoneNumber"}
    assert set(results[3]["errors"]) == {"to", "html"}
    assert set(results[4]["errors"]) == {"message"}
    assert set(results[5]["errors"]) == {"type"}
    sms = Job.objects.get(pk=results[0]["jobId"])
    email = Job.objects.get(pk=results[2]["jobId"])
    assert (sms.type, sms.status, sms.queue) == ("sms", "waiting", "send-sms-queue")
    assert (email.type, email.status) == ("email", "delayed")
    # The stored payload (the callback body) is the message as the single API has it.
    assert sms.payload == SMS and "type" not in email.payload
    assert results[2]["scheduledFor"] == email.scheduled_for.isoformat().replace(
        "+00:00", "Z"
    )
    assert Job.objects.count() == 2
    assert queued_ids(redis, "send-sms-queue") == [str(sms.id)]
    assert scheduled_ids() == [str(email.id)]


def test_an_atomic_batch_with_one_invalid_message_creates_nothing(client, redis):
    response = batch(
        client, [SMS_ITEM, {**SMS_ITEM, "message": ""}, EMAIL_ITEM], atomic=True
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["scheduled"], body["failed"]) == (False, 0, 3)
    assert "message" in body["results"][1]["errors"]
    assert "atomic" in body["results"][0]["errors"]
    assert "messages.1.message" in body["details"]
    assert Job.objects.count() == 0 and redis.dbsize() == 0


def test_an_atomic_batch_of_valid_messages_is_scheduled(client):
    response = batch(client, [SMS_ITEM, EMAIL_ITEM], atomic=True)
    assert response.status_code == 200 and response.json()["scheduled"] == 2
    assert Job.objects.count() == 2


def test_a_batch_with_nothing_valid_is_a_400_with_every_result(client, redis):
    response = batch(client, [{**SMS_ITEM, "phoneNumber": "x"}, {"type": "email"}])

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["error"]
    assert [set(r["errors"]) for r in body["results"]] == [
        {"phoneNumber"},
        {"to", "subject", "html", "contactId", "workspaceId"},
    ]
    assert Job.objects.count() == 0 and redis.dbsize() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": {"0": SMS_ITEM}},
        {"messages": "sms"},
        {"messages": None},
        {},
        {"messages": [SMS_ITEM], "atomic": "yes"},
        [SMS_ITEM],
    ],
)
def test_a_body_that_is_not_a_batch_is_refused(client, redis, body):
    response = post(client, URL, body)
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["details"]
    assert Job.objects.count() == 0 and redis.dbsize() == 0


def test_more_messages_than_the_limit_are_refused_whole(client, settings, redis):
    settings.BATCH_MAX_MESSAGES = 3
    assert batch(client, [SMS_ITEM] * 3).status_code == 200
    response = batch(client, [SMS_ITEM] * 4)
    assert response.status_code == 400
    assert "BATCH_MAX_MESSAGES" in response.json()["details"]["messages"][0]
    assert Job.objects.count() == 3


def test_the_batch_has_its_own_body_limit(client, settings):
    # Far above MAX_REQUEST_BYTES (and Django's DATA_UPLOAD_MAX_MEMORY_SIZE = it).
    big = {**EMAIL_ITEM, "html": "<p>" + "x" * 3000 + "</p>"}
    body = json.dumps({"messages": [big] * 200})
    assert len(body) > 2 * settings.MAX_REQUEST_BYTES
    assert post(client, URL, body).status_code == 200
    assert Job.objects.count() == 200

    settings.BATCH_MAX_REQUEST_BYTES = len(body) - 1
    response = post(client, URL, body)
    assert response.status_code == 413 and response.json()["success"] is False
    assert Job.objects.count() == 200


def test_idempotency_keys_replay_inside_a_batch_and_across_requests(client, redis):
    keyed = {**SMS_ITEM, "metadata": {"idempotencyKey": "k-1"}}
    single = post(
        client, "/api/schedule-sms", {**SMS, "metadata": {"idempotencyKey": "k-0"}}
    )
    from_single = {**SMS_ITEM, "metadata": {"idempotencyKey": "k-0"}}
    messages = [keyed, keyed, {**keyed, "message": "other"}, from_single]

    first = batch(client, messages).json()["results"]
    again = batch(client, messages[:2]).json()["results"]

    assert first[1] == {**first[0], "index": 1, "replayed": True}
    assert list(first[2]["errors"]) == ["idempotencyKey"]
    assert first[3]["jobId"] == single.json()["jobId"] and first[3]["replayed"]
    assert [r["jobId"] for r in again] == [first[0]["jobId"]] * 2
    assert Job.objects.count() == 2
    assert len(queued_ids(redis, "send-sms-queue")) == 2


def test_an_expired_idempotency_key_makes_a_new_job(client):
    keyed = {**SMS_ITEM, "metadata": {"idempotencyKey": "old"}}
    first = batch(client, [keyed]).json()["results"][0]["jobId"]
    Job.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(days=2))
    second = batch(client, [keyed]).json()["results"][0]
    assert second["jobId"] != first and "replayed" not in second
    assert Job.objects.count() == 2


def test_an_idempotency_key_header_is_refused(client):
    response = batch(client, [SMS_ITEM], HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400
    assert "idempotencyKey" in response.json()["details"]
    assert Job.objects.count() == 0


def test_a_workspace_key_schedules_only_its_own_workspace(client, settings):
    settings.API_KEYS_REQUIRED = "true"
    _, key = apikey_create(name="a", workspace_id="ws-a")
    messages = [
        {**SMS_ITEM, "workspaceId": "ws-a"},
        {**SMS_ITEM, "workspaceId": "ws-b"},
    ]

    response = batch(client, messages, HTTP_AUTHORIZATION=f"Bearer {key}")

    results = response.json()["results"]
    assert response.status_code == 200 and "jobId" in results[0]
    assert list(results[1]["errors"]) == ["workspaceId"]
    assert list(Job.objects.values_list("workspace_id", flat=True)) == ["ws-a"]
    assert batch(client, messages).status_code == 401


def test_workspace_rules_apply_and_cost_the_same_queries_at_any_size(client, settings):
    # No API-key lookups (their cached state expires within a second).
    settings.API_KEYS_REQUIRED = "false"
    Workspace.objects.create(
        workspace_id="always-quiet",
        quiet_hours_start=time(0, 0),
        quiet_hours_end=time(23, 59, 59),
    )

    def queries(size):
        messages = [
            {
                **SMS_ITEM,
                "workspaceId": ["always-quiet", "w1", "w2"][i % 3],
                "metadata": {"idempotencyKey": f"{size}-{i}"},
            }
            for i in range(size)
        ]
        forget_cached_pauses()  # both sizes read the pauses once
        with CaptureQueriesContext(connection) as captured:
            assert batch(client, messages).status_code == 200
        return len(captured)

    assert queries(3) == queries(60)
    quiet = Job.objects.filter(workspace_id="always-quiet")
    assert quiet.count() == 21
    assert {job.deferred_reason for job in quiet} == {"quiet-hours"}
    assert all(job.due_at > job.requested_for for job in quiet)
    assert {
        j.deferred_reason for j in Job.objects.exclude(workspace_id="always-quiet")
    } == {""}


def test_a_send_time_the_planner_refuses_is_that_messages_error(settings):
    payload = {**SMS, "sendAt": "next tuesday"}
    items = [
        BatchItem(0, "sms", SMS, {"delay": 0}),
        BatchItem(1, "sms", payload, {"sendAt": "next tuesday"}),
        BatchItem(2, "sms", SMS, {"delay": settings.MAX_DELAY_MS + 1}),
    ]

    results = jobs_schedule_batch(items=items)

    assert results[0].job is not None
    assert list(results[1].errors) == ["sendAt"]
    assert list(results[2].errors) == ["delay"]
    assert Job.objects.count() == 1


def test_a_dry_run_plans_but_creates_nothing(redis):
    results = jobs_schedule_batch(
        items=[BatchItem(0, "sms", SMS, {"delay": 0})], dry_run=True
    )
    assert results[0].job is not None
    assert Job.objects.count() == 0 and redis.dbsize() == 0


def _redis_shape(redis, job_ids: list[str]) -> dict:
    """Everything Redis holds, with job ids and timestamps made comparable."""
    names = {job_id: f"<job{n}>" for n, job_id in enumerate(job_ids)}

    def norm(value):
        try:
            text = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            return value  # RQ's compressed job data: compared byte for byte
        for job_id, name in names.items():
            text = text.replace(job_id, name)
        return text

    shape = {}
    for key in sorted(redis.keys("*")):
        kind = redis.type(key).decode()
        if kind == "hash":
            fields = redis.hgetall(key)
            value = {
                norm(f): "<time>" if f in (b"created_at", b"enqueued_at") else norm(v)
                for f, v in fields.items()
            }
        elif kind == "list":
            value = [norm(v) for v in redis.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(norm(v) for v in redis.smembers(key))
        elif kind == "zset":
            # Members only: a batch's jobs share one "now", so equal scores.
            value = sorted(norm(v) for v in redis.zrange(key, 0, -1))
        else:
            value = kind
        shape[norm(key)] = (value, redis.ttl(key))
    return shape


def test_redis_holds_exactly_what_the_single_endpoints_write(client, redis):
    # Two of each kind: the batch writes the first with RQ and copies it for the rest.
    messages = [SMS_ITEM, {**EMAIL_ITEM, "delay": 60_000}] * 2 + [SMS_ITEM]
    singles = [
        post(client, f"/api/schedule-{m['type']}", m).json()["jobId"] for m in messages
    ]
    single = _redis_shape(redis, singles)
    redis.flushdb()

    results = batch(client, messages).json()["results"]
    ids = [r["jobId"] for r in results]
    batched = _redis_shape(redis, ids)

    assert batched == single
    assert all(f"<job{n}>" in repr(batched) for n in range(len(messages)))
    assert queued_ids(redis, "send-sms-queue") == [ids[0], ids[2], ids[4]]
    for job_id in ids[1:4:2]:
        score = scheduled_at(job_id)
        scheduled_for = Job.objects.get(pk=job_id).scheduled_for
        assert score == pytest.approx(scheduled_for.timestamp(), abs=0.0005)


def test_a_batch_wakes_the_scheduler_once(client, redis):
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(WAKEUP_CHANNEL)
    wait_for(lambda: redis.pubsub_numsub(WAKEUP_CHANNEL)[0][1] == 1)
    delays = [30_000, 5_000, 60_000]

    batch(client, [{**SMS_ITEM, "delay": d} for d in delays])

    wakeups = []
    # Read for a moment after the first wake-up: a second one would be there by then.
    wait_for(lambda: _read_wakeups(pubsub, wakeups))
    _read_wakeups(pubsub, wakeups, seconds=0.5)
    pubsub.close()
    earliest = min(job.scheduled_for for job in Job.objects.all())
    assert wakeups == [pytest.approx(earliest.timestamp(), abs=0.0005)]


def _read_wakeups(pubsub, into: list, seconds: float = 0.05) -> list:
    deadline = time_module.monotonic() + seconds
    while time_module.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.01)
        if message is not None:
            into.append(float(message["data"]))
    return into


@pytest.mark.django_db(transaction=True)
def test_each_job_of_a_batch_is_delivered_once_and_delayed_ones_not_early(
    client, backend, work
):
    messages = [
        {**SMS_ITEM, "contactId": "now-1"},
        {**EMAIL_ITEM, "contactId": "now-2"},
        {**SMS_ITEM, "contactId": "later-1", "delay": 1500},
        {**EMAIL_ITEM, "contactId": "later-2", "delay": 1200},
        {**SMS_ITEM, "phoneNumber": "bad"},
    ]
    ids = [r.get("jobId") for r in batch(client, messages).json()["results"]]

    work(until=lambda: len(backend.received) >= 4)
    work(until=lambda: True)

    assert sorted(r.body["jobId"] for r in backend.received) == sorted(ids[:4])
    for job_id in ids[:4]:
        job = Job.objects.get(pk=job_id)
        (received,) = backend.for_job(job_id)
        assert received.at >= job.due_at.timestamp()
        assert job.status == "completed"
        expected = {k: v for k, v in messages[ids.index(job_id)].items() if k != "type"}
        assert received.body == {**expected, "jobId": job_id}
    assert re.fullmatch(r"/send-sms|/api/email/send", backend.received[0].path)


@pytest.mark.django_db(transaction=True)
def test_redis_down_answers_503_and_leaves_no_rows(client, settings):
    with override_settings(RQ_QUEUES=queues_on(free_port(), settings)):
        response = batch(client, [SMS_ITEM, {**EMAIL_ITEM, "delay": 5000}])

        # Nothing to hand to Redis: the refusals, not a 503.
        invalid = batch(client, [{**SMS_ITEM, "phoneNumber": "x"}])

    assert response.status_code == 503
    assert response.json()["success"] is False and response["Retry-After"]
    assert Job.objects.count() == 0
    assert invalid.status_code == 400 and invalid.json()["failed"] == 1
