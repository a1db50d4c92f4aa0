"""A sendAt already past is sent at once, and the answer says so."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from jobs.models import Job

pytestmark = pytest.mark.django_db

SMS = {
    "phoneNumber": "+1234567890",
    "message": "Reminder",
    "contactId": "123456",
    "workspaceId": "66338",
}
EMAIL = {
    "to": "test@example.com",
    "subject": "Reminder",
    "html": "<p>Reminder</p>",
    "contactId": "123456",
    "workspaceId": "66338",
}


def post(client, path, body, **extra):
    return client.post(
        path, data=json.dumps(body), content_type="application/json", **extra
    )


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "path, body", [("/api/schedule-sms", SMS), ("/api/schedule-email", EMAIL)]
)
def test_past_send_at_is_sent_now_and_said_so(client, path, body):
    before = timezone.now()
    past = iso(before - timedelta(hours=2))
    answer = post(client, path, {**body, "sendAt": past}).json()
    assert answer["success"] is True and answer["sendAtInPast"] is True
    job = Job.objects.get(id=answer["jobId"])
    assert job.status == Job.Status.WAITING
    assert before <= job.due_at <= timezone.now()


def test_past_local_send_at_in_a_zone_is_said_so(client):
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    body = {**SMS, "sendAt": yesterday, "timezone": "America/New_York"}
    assert post(client, "/api/schedule-sms", body).json()["sendAtInPast"] is True


@pytest.mark.parametrize(
    "extra",
    [
        {"sendAt": iso(timezone.now() + timedelta(hours=2))},
        {"delay": 0},
        {"delay": 60000},
        {},
    ],
)
def test_future_send_at_or_a_delay_has_no_such_field(client, extra):
    answer = post(client, "/api/schedule-sms", {**SMS, **extra}).json()
    assert answer["success"] is True and "sendAtInPast" not in answer


def test_an_idempotent_replay_says_so_too(client):
    body = {**SMS, "sendAt": iso(timezone.now() - timedelta(minutes=5))}
    first = post(client, "/api/schedule-sms", body, HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(client, "/api/schedule-sms", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["sendAtInPast"] is True


def test_batch_results_say_which_send_at_was_past(client):
    now = timezone.now()
    messages = [
        {"type": "sms", **SMS, "sendAt": iso(now - timedelta(hours=1))},
        {"type": "sms", **SMS, "sendAt": iso(now + timedelta(hours=1))},
        {"type": "email", **EMAIL, "delay": 0},
    ]
    answer = post(client, "/api/schedule-batch", {"messages": messages}).json()
    assert answer["scheduled"] == 3
    assert [r.get("sendAtInPast") for r in answer["results"]] == [True, None, None]


def test_the_field_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    single = components["ScheduleOutput"]["properties"]["sendAtInPast"]
    assert single["type"] == "boolean"
    assert "sendAtInPast" not in components["ScheduleOutput"].get("required", [])
    batch = components["BatchResultOutput"]["properties"]["sendAtInPast"]
    assert batch["type"] == "boolean"
