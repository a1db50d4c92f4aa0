"""Input a hostile client would send: refused with a 4xx in the error shape, and
nothing refused is ever scheduled.

JSON that two readers can read apart (a key twice), digits outside ASCII that
Python's int(), \\d and uuid.UUID() read as digits, and URLs and headers over the
limits the app sets below the HTTP server's (config.limits; the server's own are in
tests/test_server_limits.py).
"""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from jobs.models import Job
from tests.support import EMAIL, SMS, post, schedule, scheduled_count

pytestmark = pytest.mark.django_db

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "error", "details"}
    assert body["success"] is False and body["error"]
    return body


def sms_text(*pairs: str) -> str:
    """An SMS body written by hand, so that a key can appear twice."""
    fields = [
        f"{json.dumps(key)}: {json.dumps(value)}"
        for key, value in SMS.items()
        if not any(pair.startswith(f'"{key}"') for pair in pairs)
    ]
    return "{" + ", ".join(fields + list(pairs)) + "}"


# --- a NUL in any string --------------------------------------------------------------

SMS_ITEM = {**SMS, "type": "sms"}
# PostgreSQL keeps no NUL in text or jsonb: each of these was a 500 there, not an
# answer (DRF's CharField refuses one by itself; ids, metadata and keys are ours).
WITH_NUL = [
    ("/api/schedule-sms", {**SMS, "contactId": "a\x00"}),
    ("/api/schedule-sms", {**SMS, "workspaceId": "\x00"}),
    ("/api/schedule-sms", {**SMS, "metadata": {"campaignId": "spring\x00"}}),
    ("/api/schedule-sms", {**SMS, "metadata": {"idempotencyKey": "k\x00"}}),
    ("/api/schedule-sms", {**SMS, "metadata": {"note\x00": "a key"}}),
    ("/api/schedule-sms", {**SMS, "metadata": {"deep": [{"x": ["\x00"]}]}}),
    ("/api/schedule-email", {**EMAIL, "contactId": "\x00"}),
    ("/api/schedule-batch", {"messages": [{**SMS_ITEM, "contactId": "\x00"}]}),
]  # fmt: skip


# Via the lean path and, with a query string, through DRF's dispatch and parser.
@pytest.mark.parametrize("via", ["", "?via=drf"])
@pytest.mark.parametrize(
    "path, body", WITH_NUL, ids=[f"{path} {n}" for n, (path, _) in enumerate(WITH_NUL)]
)
def test_a_nul_in_any_string_of_a_body_is_refused(client, redis, path, body, via):
    details = assert_error(post(client, path + via, body), 400)["details"]
    assert "NUL" in json.dumps(details), details
    assert Job.objects.count() == 0 and scheduled_count() == 0
    assert not redis.keys("rq:queue:*")


def test_a_nul_in_a_reschedule_body_leaves_the_job_as_it_was(client):
    job_id = schedule(client, delay=60_000)
    before = Job.objects.get(pk=job_id).scheduled_for
    body = {"delay": 120_000, "timezone": "UTC\x00"}
    assert_error(client.patch(f"/api/jobs/{job_id}", body, "application/json"), 400)
    assert Job.objects.get(pk=job_id).scheduled_for == before


def test_an_escaped_backslash_before_u0000_is_no_nul(client):
    # The text \u0000 (a backslash, then "u0000") is six ordinary characters.
    body = {**SMS, "message": "C:\\u0000"}
    assert "\\\\u0000" in json.dumps(body)
    response = post(client, "/api/schedule-sms", body)
    assert response.status_code == 200, response.content


# --- a key twice ----------------------------------------------------------------------

DUPLICATED = [
    ('"workspaceId": "ws-a", "workspaceId": "ws-b"', "workspaceId"),
    # The same key, once escaped: equal once unescaped, as every reader sees it.
    ('"workspaceId": "ws-a", "\\u0077orkspaceId": "ws-b"', "workspaceId"),
    ('"metadata": {"campaignId": "a", "campaignId": "b"}', "campaignId"),
    ('"metadata": {"deep": [{"x": {"k": 1, "k": 2}}]}', "k"),
]


# Via the lean path and, with a query string, through DRF's dispatch and parser.
@pytest.mark.parametrize("path", ["/api/schedule-sms", "/api/schedule-sms?via=drf"])
@pytest.mark.parametrize("pairs, key", DUPLICATED)
def test_a_key_twice_at_any_depth_is_refused_by_name(client, redis, path, pairs, key):
    response = post(client, path, sms_text(pairs))

    body = assert_error(response, 400)
    assert f'"{key}"' in body["error"]
    assert body["details"] == {
        "body": [f'The key "{key}" appears twice in one object: give each key once.']
    }
    assert Job.objects.count() == 0 and scheduled_count() == 0
    assert redis.llen("rq:queue:send-sms-queue") == 0


def test_the_lean_path_and_drf_refuse_a_key_twice_alike(client):
    text = sms_text('"delay": 0, "delay": 60000')
    lean = post(client, "/api/schedule-sms", text)
    drf = post(client, "/api/schedule-sms?via=drf", text)
    assert lean.status_code == drf.status_code == 400
    assert lean.content == drf.content


def test_a_key_twice_in_one_batch_message_refuses_the_whole_batch(client):
    good = json.dumps(SMS)
    bad = sms_text('"phoneNumber": "+14155550100", "phoneNumber": "+14155550199"')
    text = f'{{"messages": [{good}, {bad}]}}'

    body = assert_error(post(client, "/api/schedule-batch", text), 400)

    assert '"phoneNumber"' in body["error"]
    assert Job.objects.count() == 0 and scheduled_count() == 0


def test_a_key_twice_at_the_top_of_a_batch_is_refused(client):
    text = f'{{"messages": [{json.dumps(SMS)}], "atomic": false, "atomic": true}}'
    body = assert_error(post(client, "/api/schedule-batch", text), 400)
    assert '"atomic"' in body["error"]
    assert Job.objects.count() == 0


def test_a_reschedule_with_a_key_twice_leaves_the_job_as_it_was(client):
    job_id = schedule(client, delay=60_000)
    before = Job.objects.get(pk=job_id).due_at

    response = client.patch(
        f"/api/jobs/{job_id}",
        '{"delay": 1000, "delay": 3600000}',
        content_type="application/json",
    )

    assert '"delay"' in assert_error(response, 400)["error"]
    assert Job.objects.get(pk=job_id).due_at == before


def test_a_campaign_action_with_a_key_twice_changes_nothing(client):
    job_id = schedule(client, delay=60_000, campaign="spring")
    before = Job.objects.get(pk=job_id).due_at
    text = '{"shiftMs": 1000, "shiftMs": -1000}'

    response = post(client, "/api/campaigns/spring/reschedule", text)

    assert '"shiftMs"' in assert_error(response, 400)["error"]
    assert Job.objects.get(pk=job_id).due_at == before


def test_the_same_key_in_different_objects_is_fine(client):
    body = {**SMS, "metadata": {"workspaceId": "x", "inner": {"workspaceId": "y"}}}
    assert post(client, "/api/schedule-sms", body).status_code == 200


# --- digits outside ASCII -------------------------------------------------------------

PHONES = [
    "+1" + "4155550123".translate(ARABIC_INDIC),
    "+1" + "4155550123".translate(FULLWIDTH),
    "+1४१५५५५०१२३",  # Devanagari
    "+141555501٢٣",  # mostly ASCII
    "+14155550123\n",  # "$" alone would take the newline
]


@pytest.mark.parametrize("path", ["/api/schedule-sms", "/api/schedule-sms?via=drf"])
@pytest.mark.parametrize("phone", PHONES)
def test_a_phone_number_takes_ascii_digits_only(client, path, phone):
    response = post(client, path, {**SMS, "phoneNumber": phone})

    body = assert_error(response, 400)
    assert list(body["details"]) == ["phoneNumber"]
    assert Job.objects.count() == 0 and scheduled_count() == 0


def test_the_phone_numbers_of_the_batch_take_ascii_digits_only(client):
    messages = [{**SMS, "type": "sms", "phoneNumber": phone} for phone in PHONES]
    response = post(client, "/api/schedule-batch", {"messages": messages})
    assert response.status_code == 400
    results = response.json()["results"]
    assert [list(r["errors"]) for r in results] == [["phoneNumber"]] * len(PHONES)
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "to",
    [
        "\u017f@example.com",  # long s: Django's case-insensitive pattern takes it
        "\u212a@example.com",  # Kelvin sign, as "k"
        "a@\uff11\uff12\uff13.com",  # fullwidth digits: "123.com" once normalized
        "a@ｅxample.com",
    ],
)
def test_an_email_address_has_one_spelling(client, to):
    body = assert_error(post(client, "/api/schedule-email", {**EMAIL, "to": to}), 400)
    assert list(body["details"]) == ["to"]
    assert Job.objects.count() == 0


def test_an_internationalized_domain_is_still_an_email_address(client):
    response = post(client, "/api/schedule-email", {**EMAIL, "to": "a@münchen.de"})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("delay", ["300", "٣٠٠", "３００", "3e2"])
def test_a_delay_is_a_json_number_never_a_string(client, delay):
    body = assert_error(post(client, "/api/schedule-sms", {**SMS, "delay": delay}), 400)
    assert list(body["details"]) == ["delay"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize("limit", ["٥", "５", " 5", "5 ", "5.0", "1_0", "+5"])
def test_the_list_limit_takes_ascii_digits_only(client, limit):
    body = assert_error(client.get("/api/jobs", {"limit": limit}), 400)
    assert list(body["details"]) == ["limit"]


def test_the_list_limit_in_ascii_digits_is_read(client):
    for _ in range(3):
        schedule(client, delay=60_000)
    assert len(client.get("/api/jobs", {"limit": "2"}).json()["jobs"]) == 2


@pytest.mark.parametrize(
    "spell",
    [
        lambda job_id: job_id.translate(ARABIC_INDIC),
        lambda job_id: job_id.translate(FULLWIDTH),
        lambda job_id: "{" + job_id + "}",
        lambda job_id: "urn:uuid:" + job_id,
    ],
    ids=["arabic-indic", "fullwidth", "braces", "urn"],
)
def test_a_job_id_has_one_spelling(client, spell):
    job_id = schedule(client, delay=60_000)
    other = spell(job_id)
    # uuid.UUID() reads every one of these as the job's id.
    assert uuid.UUID(other) == uuid.UUID(job_id)

    for path in (f"/api/job-status/{other}", f"/api/jobs/{other}"):
        assert_error(client.get(path), 404)
    assert_error(client.delete(f"/api/jobs/{other}"), 404)
    assert Job.objects.get(pk=job_id).status == "delayed"


def test_a_job_id_without_hyphens_or_in_capitals_still_finds_the_job(client):
    job_id = schedule(client, delay=60_000)
    for spelling in (job_id.replace("-", ""), job_id.upper()):
        assert client.get(f"/api/job-status/{spelling}").json()["jobId"] == job_id


def test_the_test_page_reads_a_delay_in_ascii_digits_only(client, settings):
    settings.DEBUG = True  # the test pages are open in local development
    form = {"phoneNumber": "+14155550123", "message": "hi", "contactId": "1",
            "workspaceId": "w"}  # fmt: skip
    refused = client.post("/test-sms", {**form, "delay": "٦٠٠٠٠"})
    assert refused.status_code == 400
    assert 'id="errors-delay"' in refused.content.decode()
    assert Job.objects.count() == 0
    assert client.post("/test-sms", {**form, "delay": "60000"}).status_code == 200


def test_a_spreadsheet_delay_in_other_digits_is_a_row_error(tmp_path, redis):
    text = (
        "phoneNumber,message,contactId,workspaceId,delay\n"
        "+14155550101,a,c-1,ws-1,٦٠٠٠٠\n"
        "+14155550102,b,c-2,ws-1,²\n"  # "²".isdigit() is true; int("²") fails
        "+14155550103,c,c-3,ws-1,60000\n"
    )
    path = tmp_path / "messages.csv"
    path.write_text(text, encoding="utf-8")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("schedule_csv", str(path), "--type", "sms", stdout=out, stderr=err)

    assert "scheduled 1, failed 2" in out.getvalue()
    assert "line 2: delay:" in err.getvalue() and "line 3: delay:" in err.getvalue()
    assert Job.objects.get().contact_id == "c-3"


# --- URL and headers over the app's limits (config.limits) ----------------------------


def call_app(environ: dict) -> tuple[str, dict, bytes]:
    from config.wsgi import application

    started = {}
    chunks = application(environ, lambda s, h: started.update(s=s, h=dict(h)))
    try:
        return started["s"], started["h"], b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()


@pytest.mark.django_db(transaction=True)
def test_a_url_over_max_url_bytes_is_a_json_414(settings):
    limit = settings.MAX_URL_BYTES
    path = "/api/job-status/"
    at_limit = RequestFactory().get(path + "a" * (limit - len(path))).environ
    over = RequestFactory().get(path + "a" * (limit - len(path) + 1)).environ

    status, headers, content = call_app(over)

    assert status == "414 URI Too Long"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(content) == {
        "success": False,
        "error": f"The request URL is longer than {limit} bytes.",
        "details": {},
    }
    # At the limit the request goes on: no such job.
    assert call_app(at_limit)[0].startswith("404")


@pytest.mark.django_db(transaction=True)
def test_a_query_string_counts_toward_the_url(settings):
    query = "q=" + "x" * settings.MAX_URL_BYTES
    environ = RequestFactory().get("/api/jobs", QUERY_STRING=query).environ
    assert call_app(environ)[0] == "414 URI Too Long"


@pytest.mark.django_db(transaction=True)
def test_headers_over_max_header_bytes_are_a_json_431(settings):
    limit = settings.MAX_HEADER_BYTES
    factory = RequestFactory()
    small = factory.get("/health").environ
    used = sum(len(k) + len(v) for k, v in small.items() if k.startswith("HTTP_"))
    name = "HTTP_X_PADDING"
    fill = limit - used - len(name)
    at_limit = factory.get("/api/nope", **{name: "p" * fill}).environ
    over = factory.get("/api/nope", **{name: "p" * (fill + 1)}).environ

    status, headers, content = call_app(over)

    assert status == "431 Request Header Fields Too Large"
    assert json.loads(content)["error"] == (
        f"The request headers are larger than {limit} bytes."
    )
    assert call_app(at_limit)[0].startswith("404")
