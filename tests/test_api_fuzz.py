"""Fuzz the API from its own OpenAPI schema (drf-spectacular + schemathesis).

Whatever the generator sends, valid or not: never a 5xx, and every answer (status,
content type, body) is one the schema documents. Stateful runs chain operations
through the schema's links (schedule -> status -> reschedule -> cancel), and a
refused request changes no job. Then, for every operation: hostile values in each
path and query parameter; bodies, the URL and the headers at and one byte over
their limits (MAX_REQUEST_BYTES, BATCH_MAX_REQUEST_BYTES, MAX_URL_BYTES,
MAX_HEADER_BYTES); and every length limit of a schedule body at it and one over.
What is refused creates or changes nothing.
"""

import json
import os
from collections import Counter
from urllib.parse import quote

import pytest
import schemathesis
import yaml
from django.test import RequestFactory
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from jobs import apikeys
from jobs.broker import redis_connection
from jobs.models import AuditEntry, Job, PausedScope, Workspace
from jobs.services.holds import forget_cached_pauses
from jobs.workspaces import forget_cached_workspaces
from queueservices.serializers import max_endpoint_length
from tests.support import EMAIL, SMS, post

schema = schemathesis.openapi.from_wsgi("/api/schema", application)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _short_pause_wait(monkeypatch):
    # A pause answers once other processes' copies of the pauses are stale (1 s):
    # this one process has no others, and the wait, hundreds of times over, was
    # three quarters of the test's time. What the wait guarantees is tested in
    # tests/test_paused_scope.py.
    monkeypatch.setattr("jobs.services.holds.PAUSES_CACHE_S", 0.02)


# transaction=True: the WSGI handler closes the connection after each request.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hypothesis_settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_never_errors_and_keeps_to_its_schema(case):
    case.call_and_validate(checks=CHECKS)


# --- stateful: operations chained through the schema's links -------------------------

# (method, path, status) of every call the stateful runs made, and for each job the
# operations that answered 200 for it, in order.
CALLS: Counter = Counter()
CHAINS: dict[str, list[str]] = {}
STEP_NAMES = {
    "POST /api/schedule-sms": "schedule",
    "POST /api/schedule-email": "schedule",
    "GET /api/job-status/{job_id}": "status",
    "GET /api/jobs/{job_id}": "status",
    "PATCH /api/jobs/{job_id}": "reschedule",
    "DELETE /api/jobs/{job_id}": "cancel",
}


def jobs_snapshot() -> list[tuple]:
    return list(
        Job.objects.order_by("pk").values_list(
            "pk", "status", "scheduled_for", "attempts", "campaign_id"
        )
    )


class JobWorkflow(schema.as_state_machine()):
    """Each step: the generator's request, or one a link leads to from an earlier
    answer (the job id it holds), with a real API key (the generator's own
    Authorization values are the stateless test's). A 4xx leaves every job as it
    was."""

    api_key = ""

    def setup(self):
        # Each scenario from scratch: Hypothesis replays a scenario to shrink it,
        # and the answers must not depend on what earlier scenarios left behind
        # (an idempotency key, a paused campaign).
        for model in (Job, AuditEntry, PausedScope, Workspace):
            model.objects.all().delete()
        redis_connection().flushdb()
        forget_cached_pauses()
        forget_cached_workspaces()

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Bearer {self.api_key}"}}

    def before_call(self, case):
        # The schema cannot say "exactly one of delay and sendAt", so most generated
        # reschedules give neither (a 400 the stateless test sees plenty of): send
        # those a plain delay, so that a link to a reschedule can reach a job.
        body = case.body
        if case.method == "PATCH" and isinstance(body, dict) and not _due(body):
            case.body = {"delay": 60_000}
        self.before = jobs_snapshot()

    def after_call(self, response, case):
        CALLS[(case.method.upper(), case.path, response.status_code)] += 1
        step = STEP_NAMES.get(f"{case.method.upper()} {case.path}")
        if step and response.status_code == 200:
            CHAINS.setdefault(response.json()["jobId"], []).append(step)
        if 400 <= response.status_code < 500:
            assert jobs_snapshot() == self.before, (case.path, response.text)

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


def _due(body: dict) -> list:
    return [body[key] for key in ("delay", "sendAt") if body.get(key) is not None]


@pytest.mark.django_db(transaction=True)
def test_stateful_runs_follow_the_links_and_refusals_change_nothing():
    CALLS.clear()
    CHAINS.clear()
    _, JobWorkflow.api_key = apikeys.apikey_create(name="fuzz")
    JobWorkflow.run(
        settings=hypothesis_settings(
            max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")) // 2,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    print(sorted(CALLS.items()))
    print(Counter(" -> ".join(chain) for chain in CHAINS.values()))
    # The links were followed: a job id from an answer found its job, for each kind
    # of link, and at least once two links on from its schedule.
    assert CALLS[("GET", "/api/job-status/{job_id}", 200)]
    assert CALLS[("PATCH", "/api/jobs/{job_id}", 200)]
    assert CALLS[("DELETE", "/api/jobs/{job_id}", 200)]
    assert any(len(chain) >= 3 for chain in CHAINS.values()), CHAINS


@pytest.mark.django_db(transaction=True)
def test_the_schema_links_lead_from_a_schedule_to_status_reschedule_cancel(client):
    """Followed by hand, from each answer to the next, as a client reading the
    schema would."""
    served = yaml.safe_load(client.get("/api/schema").content)
    operations = {
        operation["operationId"]: (method, path)
        for path, methods in served["paths"].items()
        for method, operation in methods.items()
    }
    answer = post(client, "/api/schedule-sms", {**SMS, "delay": 60_000})
    method, path = "post", "/api/schedule-sms"
    chain = [
        ("status", "delayed"),
        ("reschedule", "delayed"),
        ("cancel", "cancelled"),
        ("status", "cancelled"),
    ]
    for name, expected in chain:
        link = served["paths"][path][method]["responses"]["200"]["links"][name]
        assert link["parameters"] == {"job_id": "$response.body#/jobId"}
        method, path = operations[link["operationId"]]
        url = path.replace("{job_id}", answer.json()["jobId"])
        body = json.dumps({"delay": 120_000}) if method == "patch" else None
        answer = getattr(client, method)(url, body, content_type="application/json")
        assert answer.status_code == 200, answer.content
        assert answer.json()["status"] == expected, (name, answer.json())
    assert Job.objects.get().status == "cancelled"


# --- hostile values in every path and query parameter ---------------------------------

OPERATIONS = [result.ok() for result in schema.get_all_operations()]
# Text a client may put in any parameter (sent percent-encoded, as clients do).
HOSTILE = [
    "٣٠٠",  # Arabic-Indic digits: int() and \d read them as 300
    "１２３",  # fullwidth digits
    "٤٢٩٣٥٩١d-٢c٨٣-٤ced-٩f٧٤-٤٧٦٠٨٨f٥٥٢٤c",  # a job id as uuid.UUID() reads it
    "{4293591d-2c83-4ced-9f74-476088f5524c}",
    "../../admin",
    "' OR '1'='1",
    "\u202etxt.exe",  # right-to-left override
    "😀",
    "\x00",
    "\r\nX-Injected: 1",
    " ",
    "null",
    "-1",
    "1e309",
    "0x1F",
    "a" * 256,  # one over MAX_ID_LENGTH
    "x" * 4000,
]
# Already percent-encoded: bytes that are not UTF-8 (an overlong "/", a surrogate),
# a NUL, an encoded slash and an encoded way up.
RAW = ["%FF", "%C0%AF", "%ED%A0%80", "%00", "a%2Fb", "..%2F..%2Fadmin", "%2e%2e%2f"]


def hostile_parameters():
    for operation in OPERATIONS:
        places = [("path", p.name) for p in operation.path_parameters]
        places += [("query", p.name) for p in operation.query]
        for place, name in places:
            for n, value in enumerate(HOSTILE + RAW):
                label = f"{operation.method.upper()} {operation.path} {name} {n}"
                yield pytest.param(operation, place, name, value, id=label)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation, place, name, value", list(hostile_parameters()))
def test_hostile_parameters_get_a_documented_answer(operation, place, name, value):
    if place == "path":
        encoded = value if value in RAW else quote(value, safe="")
        case = operation.Case(path_parameters={name: encoded})
    else:
        case = operation.Case(query={name: value})
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert not Job.objects.exists()  # nothing refused is created


# --- bodies at and just over the size limits ------------------------------------------

VALID_BODIES = {
    "/api/schedule-sms": SMS,
    "/api/schedule-email": EMAIL,
    "/api/schedule-batch": {"messages": [{**SMS, "type": "sms"}]},
}


def body_operations():
    for operation in OPERATIONS:
        if len(operation.body):
            label = f"{operation.method.upper()} {operation.path}"
            yield pytest.param(operation, id=label)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", list(body_operations()))
def test_a_body_at_the_limit_is_read_and_one_byte_over_is_a_413(operation, settings):
    batch = operation.path == "/api/schedule-batch"
    limit = settings.BATCH_MAX_REQUEST_BYTES if batch else settings.MAX_REQUEST_BYTES
    job_id = _pending_job()
    params = {"job_id": job_id, "campaign_id": "spring", "workspace_id": "ws-1"}
    path_parameters = {p.name: params[p.name] for p in operation.path_parameters}
    valid = json.dumps(VALID_BODIES.get(operation.path, {"delay": 60_000})).encode()
    # Valid JSON either way: padded with whitespace to the limit, then one byte more.
    at_limit = valid + b" " * (limit - len(valid))

    for body in (at_limit, at_limit + b" "):
        case = operation.Case(
            path_parameters=path_parameters, body=body, media_type="application/json"
        )
        before = jobs_snapshot()
        response = case.call_and_validate(checks=CHECKS)
        if len(body) <= limit:
            assert response.status_code in (200, 400), response.text
        else:
            assert response.status_code == 413, response.text
            assert response.json() == {
                "success": False,
                "error": f"The request body is larger than {limit} bytes.",
                "details": {},
            }
            assert jobs_snapshot() == before  # nothing created, nothing changed


# --- the URL and the headers at and just over their limits, for every operation -------


def operation_label(operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _request(operation, **extra):
    """A valid request for the operation (a pending job's id, a valid body)."""
    params = {"job_id": _pending_job(), "campaign_id": "spring", "workspace_id": "ws-1"}
    path = operation.path.format(**params)
    body = b""
    if len(operation.body):
        body = json.dumps(VALID_BODIES.get(operation.path, {"delay": 60_000}))
    return RequestFactory().generic(
        operation.method.upper(), path, body, "application/json", **extra
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", OPERATIONS, ids=operation_label)
def test_a_url_one_byte_over_max_url_bytes_is_a_414_that_changes_nothing(
    operation, settings
):
    limit = settings.MAX_URL_BYTES
    path = _request(operation).path
    for size in (limit, limit + 1):
        query = "pad=" + "x" * (size - len(path) - len("pad="))
        request = _request(operation, QUERY_STRING=query)
        assert len(request.path) + len(request.META["QUERY_STRING"]) == size
        before = jobs_snapshot()
        status, body = _call(request.environ)
        if size <= limit:
            assert status < 500 and status != 414, body
        else:
            assert (status, body["success"]) == (414, False), body
            assert jobs_snapshot() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", OPERATIONS, ids=operation_label)
def test_headers_one_byte_over_max_header_bytes_are_a_431_that_changes_nothing(
    operation, settings
):
    limit = settings.MAX_HEADER_BYTES
    environ = _request(operation).environ
    used = sum(len(k) + len(v) for k, v in environ.items() if k[:5] == "HTTP_")
    name = "HTTP_X_PADDING"
    for size in (limit, limit + 1):
        request = _request(operation, **{name: "p" * (size - used - len(name))})
        before = jobs_snapshot()
        status, body = _call(request.environ)
        if size <= limit:
            assert status < 500 and status != 431, body
        else:
            assert (status, body["success"]) == (431, False), body
            assert jobs_snapshot() == before


def _call(environ) -> tuple[int, dict]:
    started = {}
    chunks = application(environ, lambda status, headers: started.update(s=status))
    content = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return int(started["s"].split()[0]), json.loads(content)


# --- every length limit of a schedule body, at it and one over ------------------------

ENDPOINT = max_endpoint_length()
LONG_DOMAIN = "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"  # 189 characters
LENGTH_LIMITS = [
    # path, field (dotted: inside metadata), a valid value at the limit (None where
    # no valid value is that long), a value one character over
    ("/api/schedule-sms", "phoneNumber", "+1" + "2" * 14, "+1" + "2" * 15),
    ("/api/schedule-sms", "contactId", "c" * 255, "c" * 256),
    ("/api/schedule-sms", "workspaceId", "w" * 255, "w" * 256),
    ("/api/schedule-sms", "sendAt", None, "9" * 65),
    ("/api/schedule-sms", "timezone", None, "A" * 65),
    ("/api/schedule-sms", "metadata.idempotencyKey", "k" * 255, "k" * 256),
    ("/api/schedule-sms", "metadata.campaignId", "c" * 255, "c" * 256),
    # With SMS_API_URL and EMAIL_API_URL, at most Job.callback_url's 2,048.
    ("/api/schedule-sms", "metadata.callbackEndpoint", "/" + "a" * (ENDPOINT - 1),
     "/" + "a" * ENDPOINT),
    ("/api/schedule-email", "to", "a" * 64 + "@" + LONG_DOMAIN,
     "a" * 65 + "@" + LONG_DOMAIN),
    ("/api/schedule-email", "subject", "s" * 998, "s" * 999),
]  # fmt: skip


def _with(path: str, field: str, value) -> dict:
    body = {**(SMS if path == "/api/schedule-sms" else EMAIL), "delay": 60_000}
    if field.startswith("metadata."):
        return {**body, "metadata": {field.removeprefix("metadata."): value}}
    return {**body, field: value}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path, field, at_limit, over", LENGTH_LIMITS, ids=[f[1] for f in LENGTH_LIMITS]
)
def test_every_length_limit_takes_its_length_and_refuses_one_more(
    client, path, field, at_limit, over
):
    if at_limit is not None:
        response = post(client, path, _with(path, field, at_limit))
        assert response.status_code == 200, response.content
    before = jobs_snapshot()
    response = post(client, path, _with(path, field, over))
    assert response.status_code == 400, response.content
    details = response.json()["details"]
    assert set(field.split(".")) & set(details), details  # the field is named
    assert jobs_snapshot() == before


def _pending_job() -> str:
    body = {**SMS, "delay": 3_600_000, "metadata": {"campaignId": "spring"}}
    environ = (
        RequestFactory()
        .post("/api/schedule-sms", json.dumps(body), content_type="application/json")
        .environ
    )
    started = {}
    chunks = application(environ, lambda status, headers: started.update(s=status))
    content = b"".join(chunks)
    if hasattr(chunks, "close"):  # WSGI: a list (FastLane's answer) has none
        chunks.close()
    assert started["s"] == "200 OK", content
    return json.loads(content)["jobId"]
