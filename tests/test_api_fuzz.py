"""Fuzz the API from its own OpenAPI schema (drf-spectacular + schemathesis).

Whatever the generator sends, valid or not: never a 5xx, and every answer (status,
content type, body) is one the schema documents. Then, for every operation: hostile
values in each path and query parameter, and bodies at and one byte over the size
limit (MAX_REQUEST_BYTES, BATCH_MAX_REQUEST_BYTES).
"""

import json
import os
from urllib.parse import quote

import pytest
import schemathesis
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
from tests.support import EMAIL, SMS

schema = schemathesis.openapi.from_wsgi("/api/schema", application)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


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
# Already percent-encoded: bytes that are not UTF-8 (an overlong "/", a surrogate).
RAW = ["%FF", "%C0%AF", "%ED%A0%80"]


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
