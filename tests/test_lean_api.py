"""The lean path (queueservices.lean, answers, config.apilane) answers exactly as
DRF's own dispatch and the published serializers do.

A query string sends a request through DRF's full dispatch (queueservices.lean
takes only plain requests), so each case is asked both ways and compared byte for
byte: status, body and the headers a client sees.
"""

import json
import uuid
from datetime import UTC, datetime, time

import pytest
from django.test import RequestFactory
from django.utils import timezone

from jobs.apikeys import apikey_create
from jobs.models import Job, JobAttempt, PausedScope, Workspace
from queueservices.answers import job_status_answer, schedule_answer
from queueservices.serializers import JobStatusOutput, ScheduleOutput

pytestmark = pytest.mark.django_db

SMS = {
    "phoneNumber": "+14155550123",
    "message": "hi",
    "contactId": "c-1",
    "workspaceId": "ws-1",
}
EMAIL = {
    "to": "a@example.com",
    "subject": "s",
    "html": "<p>x</p>",
    "contactId": "c-1",
    "workspaceId": "ws-1",
}
HEADERS = ("Content-Type", "Allow", "WWW-Authenticate", "Retry-After")


def sms(changes: dict) -> bytes:
    return json.dumps({**SMS, **changes}).encode()


REFUSED = [
    ("/api/schedule-sms", b"{}"),
    ("/api/schedule-sms", b"null"),
    ("/api/schedule-sms", b"[1, 2]"),
    ("/api/schedule-sms", b'"text"'),
    ("/api/schedule-sms", b"{not json"),
    ("/api/schedule-sms", b"\xff\xfe"),
    ("/api/schedule-sms", b'{"delay": NaN}'),
    ("/api/schedule-sms", sms({"phoneNumber": "555"})),
    ("/api/schedule-sms", sms({"message": ""})),
    ("/api/schedule-sms", sms({"message": "a\x00b"})),
    ("/api/schedule-sms", sms({"contactId": None})),
    ("/api/schedule-sms", sms({"delay": 1.5, "timezone": 3})),
    ("/api/schedule-sms", sms({"sendAt": "soon"})),
    ("/api/schedule-sms", sms({"sendAt": "2030-01-01T09:00:00"})),
    ("/api/schedule-sms", sms({"delay": 5, "sendAt": "2030-01-01T09:00:00Z"})),
    ("/api/schedule-sms", sms({"metadata": {"callbackEndpoint": "//x"}})),
    ("/api/schedule-sms", sms({"metadata": {"idempotencyKey": ""}})),
    ("/api/schedule-sms", sms({"respectQuietHours": "no"})),
    ("/api/schedule-email", json.dumps({**EMAIL, "to": "nobody"}).encode()),
    ("/api/schedule-email", json.dumps({**EMAIL, "subject": "x" * 999}).encode()),
    ("/api/schedule-email", json.dumps({k: 1 for k in EMAIL}).encode()),
]  # fmt: skip


def ask(client, path, body=None, query="", **extra):
    url = path + (f"?{query}" if query else "")
    if body is None:
        return client.get(url, **extra)
    return client.post(url, data=body, content_type="application/json", **extra)


def same(lean, full) -> None:
    assert lean.status_code == full.status_code
    assert lean.content == full.content
    for name in HEADERS:
        assert lean.get(name) == full.get(name), name


@pytest.mark.parametrize(("path", "body"), REFUSED)
def test_every_refusal_is_worded_as_drf_words_it(client, path, body):
    lean, full = ask(client, path, body), ask(client, path, body, query="drf=1")
    assert lean.status_code in (400, 415)
    same(lean, full)
    assert Job.objects.count() == 0


def test_too_large_a_body_is_the_same_413(client, settings):
    settings.MAX_REQUEST_BYTES = 1024
    body = sms({"message": "x" * 2000})
    lean, full = (
        ask(client, "/api/schedule-sms", body),
        ask(client, "/api/schedule-sms", body, query="drf=1"),
    )
    assert lean.status_code == 413
    same(lean, full)


def test_keys_and_workspaces_are_refused_the_same(client, settings):
    settings.API_KEYS_REQUIRED = "true"
    _, key_a = apikey_create(name="a", workspace_id="ws-a")
    body = json.dumps(SMS).encode()
    for extra in ({}, {"HTTP_AUTHORIZATION": "Bearer qs_wrong"}):
        lean = ask(client, "/api/schedule-sms", body, **extra)
        same(lean, ask(client, "/api/schedule-sms", body, query="drf=1", **extra))
        assert lean.status_code == 401
    other = {"HTTP_AUTHORIZATION": f"Bearer {key_a}"}
    lean = ask(client, "/api/schedule-sms", body, **other)
    same(lean, ask(client, "/api/schedule-sms", body, query="drf=1", **other))
    assert lean.status_code == 403 and Job.objects.count() == 0


def test_a_scheduled_job_is_answered_as_drf_answers_it(client):
    body = sms({"metadata": {"idempotencyKey": "k-1"}})
    full = ask(client, "/api/schedule-sms", body, query="drf=1")
    # The same key again on the lean path: the replay, with the same answer.
    lean = ask(client, "/api/schedule-sms", body)
    same(lean, full)
    assert full.get("Idempotent-Replayed") is None
    assert lean.get("Idempotent-Replayed") == "true"
    job_id = lean.json()["jobId"]
    same(
        ask(client, f"/api/job-status/{job_id}"),
        ask(client, f"/api/job-status/{job_id}", query="drf=1"),
    )
    for missing in ("not-a-uuid", str(uuid.uuid4())):
        lean = ask(client, f"/api/job-status/{missing}")
        same(lean, ask(client, f"/api/job-status/{missing}", query="drf=1"))
        assert lean.status_code == 404


def _schedule(client, body, path="/api/schedule-sms") -> Job:
    response = ask(client, path, json.dumps(body).encode())
    assert response.status_code == 200, response.content
    return Job.objects.get(pk=response.json()["jobId"])


def test_answers_match_the_published_serializers_for_every_kind_of_job(client):
    Workspace.objects.create(
        workspace_id="ws-quiet",
        timezone="America/New_York",
        quiet_hours_start=time(0, 0),
        quiet_hours_end=time(23, 59),
    )
    PausedScope.objects.create(
        campaign_id="camp-p", workspace_id="", paused_at=timezone.now(), actor="t"
    )
    jobs = [
        _schedule(client, SMS),
        _schedule(client, EMAIL, "/api/schedule-email"),
        _schedule(client, {**SMS, "delay": 60_000}),
        # A local time that does not exist (spring forward): dst is answered.
        _schedule(
            client,
            {**SMS, "sendAt": "2027-03-14T02:30:00", "timezone": "America/New_York"},
        ),
        _schedule(client, {**SMS, "workspaceId": "ws-quiet"}),
        _schedule(client, {**SMS, "metadata": {"campaignId": "camp-p"}}),
    ]
    assert {job.deferred_reason for job in jobs} >= {"", "quiet-hours"}
    assert any(job.status == Job.Status.PAUSED for job in jobs)
    for job in jobs:
        message = "whatever"
        expected = ScheduleOutput(job, context={"message": message}).data
        assert schedule_answer(job, message) == expected
        assert list(schedule_answer(job, message)) == list(expected)


def test_job_status_matches_the_published_serializer_with_attempts(client):
    job = _schedule(client, SMS)
    started = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    JobAttempt.objects.create(
        job=job, number=1, started_at=started, duration_ms=12, http_status=500,
        error="boom", succeeded=False,
    )  # fmt: skip
    JobAttempt.objects.create(
        job=job, number=2, started_at=started, duration_ms=3, http_status=None,
        error="", succeeded=True,
    )  # fmt: skip
    Job.objects.filter(pk=job.pk).update(
        attempts=2, started_at=started, finished_at=started, last_error="x",
        last_http_status=500,
    )  # fmt: skip
    job = Job.objects.prefetch_related("attempt_log").get(pk=job.pk)
    expected = {"success": True, **JobStatusOutput(job).data}
    answer = job_status_answer(job, list(job.attempt_log.all()))
    assert answer == json.loads(json.dumps(expected))
    assert list(answer) == list(expected)
    lean = ask(client, f"/api/job-status/{job.pk}")
    same(lean, ask(client, f"/api/job-status/{job.pk}", query="drf=1"))
    assert [a["attempt"] for a in lean.json()["deliveryAttempts"]] == [1, 2]


def _wsgi(app, path: str, body: bytes) -> tuple[str, dict, bytes]:
    environ = (
        RequestFactory()
        .post(
            path, body, content_type="application/json", HTTP_ORIGIN="https://a.example"
        )
        .environ
    )
    started = {}
    chunks = app(environ, lambda status, headers: started.update(s=status, h=headers))
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):  # WSGI: a list (FastLane's answer) has none
            chunks.close()
    return started["s"], dict(started["h"]), content


@pytest.mark.django_db(transaction=True)
def test_the_api_lane_answers_with_the_headers_of_the_full_chain(redis):
    from config.wsgi import application

    body = json.dumps(SMS).encode()
    lane = _wsgi(application, "/api/schedule-sms", body)
    full = _wsgi(application.full, "/api/schedule-sms", body)
    assert lane[0] == full[0] == "200 OK"
    assert sorted(lane[1]) == sorted(full[1])
    for name in ("X-Frame-Options", "X-Content-Type-Options", "Content-Length"):
        assert lane[1][name] == full[1][name]
    # Pages still get the whole chain (a session for the admin's login).
    page = _wsgi(application, "/admin/login/", b"")
    assert page[0].startswith("403") or "csrftoken" in page[1].get("Set-Cookie", "")


ACCEPTS = [
    None,
    "",
    "*/*",
    "application/json",
    "application/json, text/plain, */*",  # axios
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # browsers
    "application/*",
    "application/json; q=0.5",
    "application/json; indent=4",
    "application/json;charset=utf-8",
    "text/plain",
    "text/html",
    "application/xml",
    "APPLICATION/JSON",
]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_lean_path_takes_exactly_the_accept_headers_drf_answers_as_plain_json(
    accept,
):
    from rest_framework.exceptions import NotAcceptable
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.renderers import JSONRenderer
    from rest_framework.request import Request

    from queueservices.lean import json_accepted

    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(RequestFactory().get("/api/job-status/x", **extra))
    try:
        renderer, media = DefaultContentNegotiation().select_renderer(
            request, [JSONRenderer()]
        )
        # JSONRenderer reads one parameter of the accepted type: indent.
        plain = "indent" not in media.lower()
    except NotAcceptable:
        plain = False
    # The lean path may leave a request to DRF, never take one DRF answers otherwise.
    assert not json_accepted(accept) or plain
    if accept in (None, "*/*", "application/json", ACCEPTS[4], ACCEPTS[5]):
        assert json_accepted(accept)


@pytest.mark.parametrize("accept", ["application/json, text/plain, */*", "*/*"])
def test_an_axios_request_is_answered_as_drf_answers_it(client, accept):
    body = sms({})
    lean = ask(client, "/api/schedule-sms", body, HTTP_ACCEPT=accept)
    full = ask(client, "/api/schedule-sms", body, query="drf=1", HTTP_ACCEPT=accept)
    assert lean.status_code == full.status_code == 200
    assert set(lean.json()) == set(full.json())
    assert lean["Content-Type"] == full["Content-Type"] == "application/json"


PLAIN_REQUESTS = [
    ("/api/schedule-sms", {}),
    ("/api/schedule-sms/", {}),
    ("/api/schedule-sms", {"CONTENT_TYPE": "application/json; charset=UTF-8"}),
    ("/api/schedule-sms", {"HTTP_ACCEPT": "application/json, text/plain, */*"}),
    ("/api/schedule-sms", {"HTTP_IDEMPOTENCY_KEY": "k-plain"}),
]


@pytest.mark.parametrize(("path", "extra"), PLAIN_REQUESTS)
def test_plain_requests_skip_django_s_handler(client, path, extra):
    content_type = extra.pop("CONTENT_TYPE", "application/json")
    response = client.post(path, data=sms({}), content_type=content_type, **extra)
    assert response.status_code == 200
    assert getattr(response, "answered_by_fast_lane", False)
    status = client.get(f"/api/job-status/{response.json()['jobId']}")
    assert status.status_code == 200 and status.answered_by_fast_lane


OTHER_REQUESTS = [
    ("/api/schedule-sms", {"CONTENT_TYPE": "application/json; charset=latin-1"}),
    ("/api/schedule-sms", {"CONTENT_TYPE": "text/plain"}),
    ("/api/schedule-sms", {"HTTP_ORIGIN": "https://app.example.com"}),
    ("/api/schedule-sms", {"HTTP_ACCEPT": "application/json; indent=2"}),
    ("/api/schedule-sms", {"HTTP_HOST": "bad host"}),
    ("/api/schedule-sms?x=1", {}),
    ("/api/schedule-sms", {"REQUEST_METHOD": "PUT"}),
]


@pytest.mark.parametrize(("path", "extra"), OTHER_REQUESTS)
def test_other_requests_are_answered_by_django(client, path, extra):
    content_type = extra.pop("CONTENT_TYPE", "application/json")
    response = client.generic(
        extra.pop("REQUEST_METHOD", "POST"),
        path,
        data=sms({}),
        content_type=content_type,
        **extra,
    )
    assert not getattr(response, "answered_by_fast_lane", False)


def test_an_error_raised_in_the_fast_lane_is_answered_once_by_drf(client, redis):
    # The same key again with another body: job_schedule raises the conflict in
    # FastLane, which hands it to DRF to word (the job is not scheduled again).
    body = sms({"metadata": {"idempotencyKey": "k-conflict"}})
    assert ask(client, "/api/schedule-sms", body).status_code == 200
    other = sms({"message": "else", "metadata": {"idempotencyKey": "k-conflict"}})
    lean = ask(client, "/api/schedule-sms", other)
    full = ask(client, "/api/schedule-sms", other, query="drf=1")
    assert lean.status_code == 409 and not getattr(lean, "answered_by_fast_lane", 0)
    same(lean, full)
    assert Job.objects.count() == 1
