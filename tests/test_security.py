"""Signed callbacks, API keys, idempotency, CORS, SSRF refusal, redacted logs."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.apikeys import apikey_create, apikey_revoke
from jobs.broker import get_queue
from jobs.models import Job
from tests.support import SMS, bearer, post

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"an older secret, still accepted").decode()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """The README's Python verifier, word for word."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split()
    )


@pytest.mark.django_db(transaction=True)
def test_callbacks_and_webhooks_are_signed_with_every_active_secret(
    client, backend, work, settings
):
    settings.CALLBACK_SIGNING_SECRETS = [SECRET, OLD_SECRET]
    settings.JOB_ATTEMPTS = 1
    ok_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    failed_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[failed_id] = [500]

    work(until=lambda: len(backend.received) >= 3)

    calls = backend.for_job(ok_id) + backend.for_job(failed_id)
    assert len(calls) == 3  # two callbacks, one failure webhook
    for call in calls:
        headers = {k.lower(): v for k, v in call.headers.items()}
        raw = call.raw
        assert verify(SECRET, headers, raw) and verify(OLD_SECRET, headers, raw)
        assert not verify(SECRET, headers, raw + b" ")
        assert not verify("whsec_" + base64.b64encode(b"wrong").decode(), headers, raw)
        age = timezone.now().timestamp() - int(headers["webhook-timestamp"])
        assert 0 <= age < 10
    assert backend.for_job(ok_id)[0].headers["webhook-id"] == ok_id


# --- API keys -----------------------------------------------------------------------


@pytest.mark.django_db
def test_required_keys_refuse_missing_and_wrong_keys(client, settings):
    settings.API_KEYS_REQUIRED = "true"
    _, key = apikey_create(name="backend")

    missing = post(client, "/api/schedule-sms", SMS)
    wrong = post(client, "/api/schedule-sms", SMS, **bearer(key[:-2] + "xx"))
    right = post(client, "/api/schedule-sms", SMS, **bearer(key))

    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith(
        "Bearer"
    )
    assert missing.json()["success"] is False
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert Job.objects.count() == 1
    assert client.get(f"/api/job-status/{right.json()['jobId']}").status_code == 401
    assert client.get("/health").status_code in (200, 503)  # never behind a key


@pytest.mark.django_db
def test_a_revoked_key_stops_working(client, settings):
    settings.API_KEYS_REQUIRED = "true"
    api_key, key = apikey_create(name="old")
    apikey_revoke(api_key=api_key)
    assert post(client, "/api/schedule-sms", SMS, **bearer(key)).status_code == 401


@pytest.mark.django_db
def test_a_workspace_key_acts_only_for_its_workspace(client, settings):
    settings.API_KEYS_REQUIRED = "true"
    _, key_a = apikey_create(name="a", workspace_id="ws-a")
    _, key_all = apikey_create(name="all")
    job_b = post(
        client, "/api/schedule-sms", {**SMS, "workspaceId": "ws-b"}, **bearer(key_all)
    )

    refused = post(
        client, "/api/schedule-sms", {**SMS, "workspaceId": "ws-b"}, **bearer(key_a)
    )
    allowed = post(
        client, "/api/schedule-sms", {**SMS, "workspaceId": "ws-a"}, **bearer(key_a)
    )

    assert refused.status_code == 403 and refused.json()["success"] is False
    assert allowed.status_code == 200
    assert Job.objects.count() == 2
    other = client.get(f"/api/job-status/{job_b.json()['jobId']}", **bearer(key_a))
    own = client.get(f"/api/job-status/{allowed.json()['jobId']}", **bearer(key_a))
    assert other.status_code == 403 and own.status_code == 200


@pytest.mark.django_db
def test_auto_mode_requires_keys_once_debug_is_off_and_a_key_exists(client, settings):
    settings.API_KEYS_REQUIRED = "auto"
    settings.DEBUG = False
    assert post(client, "/api/schedule-sms", SMS).status_code == 200  # as the seed
    apikey_create(name="first key")
    assert post(client, "/api/schedule-sms", SMS).status_code == 401
    settings.DEBUG = True
    assert post(client, "/api/schedule-sms", SMS).status_code == 200


@pytest.mark.django_db
def test_a_wrong_key_is_refused_even_when_keys_are_optional(client, settings):
    settings.API_KEYS_REQUIRED = "false"
    assert (
        post(client, "/api/schedule-sms", SMS, **bearer("qs_0000_nope")).status_code
        == 401
    )


# --- idempotency --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_repeated_request_with_the_same_key_returns_the_same_job(client, redis):
    first = post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="activation-42")
    again = post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="activation-42")

    assert first.status_code == again.status_code == 200
    assert first.json()["jobId"] == again.json()["jobId"]
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1
    assert get_queue("send-sms-queue").count == 1


@pytest.mark.django_db
def test_metadata_idempotency_key_works_too_and_is_per_workspace(client):
    body = {**SMS, "metadata": {"idempotencyKey": "m-1"}}
    first = post(client, "/api/schedule-sms", body).json()["jobId"]
    assert post(client, "/api/schedule-sms", body).json()["jobId"] == first
    other_ws = post(client, "/api/schedule-sms", {**body, "workspaceId": "ws-2"})
    assert other_ws.json()["jobId"] != first
    assert Job.objects.count() == 2


@pytest.mark.django_db
def test_reusing_a_key_for_a_different_request_is_a_conflict(client):
    post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="k")
    response = post(
        client,
        "/api/schedule-sms",
        {**SMS, "message": "other"},
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert response.status_code == 409 and response.json()["success"] is False
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_a_key_older_than_its_ttl_makes_a_new_job(client, settings):
    first = post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="k").json()[
        "jobId"
    ]
    Job.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(hours=25))
    second = post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="k").json()[
        "jobId"
    ]
    assert second != first and Job.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/schedule-sms", "/api/schedule-batch"])
def test_a_key_from_before_the_orjson_hashes_still_replays_its_job(client, path):
    # Jobs made by the previous release hold the standard library's hash of their
    # request; a retry with the same key and body must find them, not a 409.
    sms = {**SMS, "message": "Olá, 10 € off", "metadata": {"idempotencyKey": "k"}}
    legacy = json.dumps(["sms", sms], sort_keys=True, separators=(",", ":"))
    legacy_hash = hashlib.sha256(legacy.encode()).hexdigest()
    first = post(client, "/api/schedule-sms", sms).json()["jobId"]
    assert Job.objects.get(pk=first).request_hash != legacy_hash  # the new spelling
    Job.objects.filter(pk=first).update(request_hash=legacy_hash)

    def send(message) -> dict:
        """The answer for this one message (a batch's first result)."""
        if path == "/api/schedule-sms":
            return post(client, path, message).json()
        batch = {"messages": [{**message, "type": "sms"}]}
        return post(client, path, batch).json()["results"][0]

    assert send(sms)["jobId"] == first
    refused = send({**sms, "message": "Olá, 20 € off"})
    assert "jobId" not in refused and "idempotency" in json.dumps(refused).lower()
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_a_request_without_a_key_stores_no_hash(client):
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    keyed = post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="k").json()
    assert Job.objects.get(pk=job_id).request_hash == ""
    assert len(Job.objects.get(pk=keyed["jobId"]).request_hash) == 64


@pytest.mark.django_db
def test_a_bad_idempotency_key_is_a_400(client):
    response = post(client, "/api/schedule-sms", SMS, HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert (
        response.status_code == 400 and "idempotencyKey" in response.json()["details"]
    )
    assert Job.objects.count() == 0


# --- CORS, SSRF, logs ---------------------------------------------------------


@pytest.mark.django_db
def test_cors_preflight_answers_only_allowed_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    allowed = client.options(
        "/api/schedule-sms",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    other = client.options(
        "/api/schedule-sms",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other


def test_callback_url_on_a_metadata_address_is_refused_at_start(settings):
    from jobs.checks import callback_targets

    settings.SMS_API_URL = "http://169.254.169.254"
    assert [e.id for e in callback_targets(None)] == ["jobs.E001"]
    settings.CALLBACK_ALLOW_LINK_LOCAL = True
    assert callback_targets(None) == []


def test_secrets_are_redacted_from_log_lines():
    from config.logfilters import RedactSecrets

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "auth %s sig %s key %s", None, None
    )
    record.args = ("Bearer qs_12345678_abcdef", "v1,AAAA+bbb=", "whsec_c2VjcmV0")
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert (
        "abcdef" not in message and "AAAA" not in message and "c2VjcmV0" not in message
    )
    assert message.count("[redacted]") == 3
