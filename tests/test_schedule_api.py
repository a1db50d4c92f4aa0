import json

import pytest

from jobs.broker import keys
from jobs.models import Job
from tests.support import EMAIL, SMS, post, queued_ids, scheduled_at

pytestmark = pytest.mark.django_db


def test_immediate_sms_is_recorded_and_queued(client, redis):
    response = post(client, "/api/schedule-sms", SMS)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "SMS scheduled successfully"
    job = Job.objects.get(pk=body["jobId"])
    assert (job.type, job.status, job.queue) == ("sms", "waiting", "send-sms-queue")
    assert job.payload == SMS
    assert job.callback_url.endswith("/send-sms")
    assert queued_ids(redis, "send-sms-queue") == [body["jobId"]]


def test_delayed_email_goes_to_the_scheduler_with_millisecond_due_time(client, redis):
    response = post(client, "/api/schedule-email", {**EMAIL, "delay": 60_000})

    assert response.status_code == 200
    assert response.json()["message"] == "Email scheduled successfully"
    job = Job.objects.get(pk=response.json()["jobId"])
    assert (job.status, job.queue) == ("delayed", "scheduled-email-queue")
    score = scheduled_at(str(job.id))
    assert score == pytest.approx(job.scheduled_for.timestamp(), abs=0.0005)
    assert score != int(score) or job.scheduled_for.microsecond == 0
    assert queued_ids(redis, "scheduled-email-queue") == []


def test_jobs_are_stored_as_json_never_pickle(client, redis):
    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": 5000}).json()["jobId"]
    # The layout is the subject here: the job hash's serialized call.
    data = redis.hget(keys.job(job_id), "data")
    # RQ compresses the payload; pickle streams start with 0x80 after decompression.
    import zlib

    assert json.loads(zlib.decompress(data))[0] == "jobs.tasks.deliver"


def test_numeric_ids_and_extra_fields_are_accepted_and_kept_as_sent(client):
    body = {**SMS, "contactId": 42, "workspaceId": 7, "campaign": {"id": "c1"}}
    job_id = post(client, "/api/schedule-sms", body).json()["jobId"]
    job = Job.objects.get(pk=job_id)
    assert job.payload["contactId"] == 42
    assert job.payload["campaign"] == {"id": "c1"}
    assert (job.contact_id, job.workspace_id) == ("42", "7")


def test_absent_or_null_delay_means_now(client):
    without = {k: v for k, v in SMS.items() if k != "delay"}
    assert post(client, "/api/schedule-sms", without).status_code == 200
    assert post(client, "/api/schedule-sms", {**SMS, "delay": None}).status_code == 200
    assert set(Job.objects.values_list("status", flat=True)) == {"waiting"}


def test_trailing_slash_is_accepted(client):
    assert post(client, "/api/schedule-sms/", SMS).status_code == 200


BAD_SMS = [
    ({k: v for k, v in SMS.items() if k != "phoneNumber"}, "phoneNumber"),
    ({**SMS, "phoneNumber": "555-1234"}, "phoneNumber"),
    ({**SMS, "phoneNumber": "+0123456"}, "phoneNumber"),
    ({**SMS, "phoneNumber": 1234567890}, "phoneNumber"),
    ({**SMS, "message": ""}, "message"),
    ({**SMS, "message": ["a"]}, "message"),
    ({**SMS, "contactId": ""}, "contactId"),
    ({**SMS, "contactId": True}, "contactId"),
    ({**SMS, "workspaceId": {"id": 1}}, "workspaceId"),
    ({**SMS, "delay": -1}, "delay"),
    ({**SMS, "delay": 1.5}, "delay"),
    ({**SMS, "delay": "1000"}, "delay"),
    ({**SMS, "delay": 365 * 24 * 3600 * 1000 + 1}, "delay"),
    ({**SMS, "metadata": "campaign-1"}, "metadata"),
    ({**SMS, "metadata": [1, 2]}, "metadata"),
]


@pytest.mark.parametrize(("body", "field"), BAD_SMS)
def test_bad_sms_is_refused_with_field_details_and_creates_nothing(
    client, redis, body, field
):
    response = post(client, "/api/schedule-sms", body)

    assert response.status_code == 400
    error = response.json()
    assert error["success"] is False
    assert field in error["details"] and error["details"][field]
    assert field in error["error"]
    assert Job.objects.count() == 0
    assert redis.dbsize() == 0


@pytest.mark.parametrize(
    "body",
    [
        {**EMAIL, "to": "not-an-address"},
        {**EMAIL, "to": "a@b"},
        {k: v for k, v in EMAIL.items() if k != "html"},
        {k: v for k, v in EMAIL.items() if k != "subject"},
    ],
)
def test_bad_email_is_refused(client, redis, body):
    assert post(client, "/api/schedule-email", body).status_code == 400
    assert Job.objects.count() == 0 and redis.dbsize() == 0


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://evil.example/x",
        "//evil.example/x",
        "evil.example/x",
        "/x@evil.example",
        "/a\\b",
        "/../admin",
        "/a/%2e%2e/b",
        "/a\nb",
        "/a\x00",
        "/a b",
        "/%2f%2fevil.example",
        "",
        42,
    ],
)
def test_callback_endpoint_must_be_a_plain_path(client, redis, endpoint):
    body = {**SMS, "metadata": {"callbackEndpoint": endpoint}}
    response = post(client, "/api/schedule-sms", body)

    assert response.status_code == 400
    assert "metadata" in response.json()["details"]
    assert Job.objects.count() == 0 and redis.dbsize() == 0


def test_plain_callback_endpoint_is_used(client):
    body = {
        **SMS,
        "metadata": {"callbackEndpoint": "/hooks/sms?v=2", "campaignId": "c9"},
    }
    job = Job.objects.get(pk=post(client, "/api/schedule-sms", body).json()["jobId"])
    assert job.callback_url.endswith("/hooks/sms?v=2")
    assert job.metadata["campaignId"] == "c9"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("{bad json", 400),
        ("[1, 2]", 400),
        ('{"delay": NaN}', 400),
        ("", 400),
        ('"text"', 400),
    ],
)
def test_malformed_bodies_get_the_error_shape(client, raw, status):
    response = post(client, "/api/schedule-sms", raw)
    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.json()["error"]
    assert Job.objects.count() == 0


def test_non_json_content_type_is_415(client):
    response = client.post("/api/schedule-sms", data="a=b", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["success"] is False


def test_oversized_body_is_413_and_creates_nothing(client, settings):
    body = {**SMS, "message": "x" * (settings.MAX_REQUEST_BYTES + 1)}
    response = post(client, "/api/schedule-sms", body)
    assert response.status_code == 413
    assert response.json()["success"] is False
    assert Job.objects.count() == 0


def test_wrong_method_and_unknown_path_get_the_error_shape(client):
    response = client.get("/api/schedule-sms")
    assert response.status_code == 405 and response.json()["success"] is False
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response.json()["success"] is False


def test_job_status_reports_the_recorded_job(client):
    job_id = post(client, "/api/schedule-sms", {**SMS, "delay": 60_000}).json()["jobId"]

    response = client.get(f"/api/job-status/{job_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["jobId"] == job_id
    assert (body["type"], body["status"], body["queue"]) == (
        "sms",
        "delayed",
        "scheduled-sms-queue",
    )
    assert body["attempts"] == 0 and body["deliveryAttempts"] == []
    assert body["scheduledFor"].endswith("Z") and body["createdAt"].endswith("Z")
    assert (
        body["startedAt"] is None
        and body["finishedAt"] is None
        and body["lastError"] is None
    )


@pytest.mark.parametrize(
    "job_id", ["00000000-0000-0000-0000-000000000000", "nope", "1' or 1=1"]
)
def test_unknown_job_status_is_404(client, job_id):
    response = client.get(f"/api/job-status/{job_id}")
    assert response.status_code == 404
    assert response.json()["success"] is False
