"""sendAt in local time: the DST policy, time zones, quiet hours, through the API."""

import html
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from rq import Queue

from jobs.models import Job, Workspace
from jobs.sendtime import (
    AMBIGUOUS,
    NONEXISTENT,
    SendTimeError,
    local_to_utc,
    parse_send_at,
    plan_send,
    quiet_hours_end,
    zone,
)
from jobs.workspaces import workspace_rules
from tests.support import SMS, post, scheduled_at, scheduled_count

SMS_AT = {k: v for k, v in SMS.items() if k != "delay"}
TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

# (zone, local wall time, expected UTC, expected local ISO, dst) on 2031's
# transition days, far enough ahead that the tests do not age for years.
DST_CASES = [
    # New York springs forward 02:00 -> 03:00 EDT on 2031-03-09.
    ("America/New_York", "2031-03-09T02:30:00", "2031-03-09T07:00:00Z",
     "2031-03-09T03:00:00-04:00", NONEXISTENT),
    # ... and falls back 02:00 EDT -> 01:00 EST on 2031-11-02.
    ("America/New_York", "2031-11-02T01:30:00", "2031-11-02T05:30:00Z",
     "2031-11-02T01:30:00-04:00", AMBIGUOUS),
    # London: 01:00 GMT -> 02:00 BST on 2031-03-30, 02:00 BST -> 01:00 GMT 10-26.
    ("Europe/London", "2031-03-30T01:30:00", "2031-03-30T01:00:00Z",
     "2031-03-30T02:00:00+01:00", NONEXISTENT),
    ("Europe/London", "2031-10-26T01:30:00", "2031-10-26T00:30:00Z",
     "2031-10-26T01:30:00+01:00", AMBIGUOUS),
    # Sydney: 02:00 AEST -> 03:00 AEDT on 2031-10-05, 03:00 AEDT -> 02:00 AEST
    # on 2031-04-06.
    ("Australia/Sydney", "2031-10-05T02:30:00", "2031-10-04T16:00:00Z",
     "2031-10-05T03:00:00+11:00", NONEXISTENT),
    ("Australia/Sydney", "2031-04-06T02:30:00", "2031-04-05T15:30:00Z",
     "2031-04-06T02:30:00+11:00", AMBIGUOUS),
]  # fmt: skip


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def queued_ids(redis, name: str) -> list[str]:
    key = Queue.redis_queue_namespace_prefix + name
    return [i.decode() for i in redis.lrange(key, 0, -1)]


# --- the planning, as pure functions -------------------------------------------


@pytest.mark.parametrize("tz_name, wall", [case[:2] for case in DST_CASES])
def test_the_dates_used_are_real_transition_days(tz_name, wall):
    tz, day = ZoneInfo(tz_name), datetime.fromisoformat(wall).date()
    start = datetime.combine(day, clock(0), tz)
    end = datetime.combine(day, clock(23, 59), tz)
    assert start.utcoffset() != end.utcoffset()


@pytest.mark.parametrize("tz_name, wall, at, local, dst", DST_CASES)
def test_dst_policy_moves_gaps_forward_and_takes_the_first_of_repeats(
    tz_name, wall, at, local, dst
):
    instant = local_to_utc(datetime.fromisoformat(wall), ZoneInfo(tz_name))
    assert (instant.at, instant.dst) == (utc(at), dst)
    assert instant.at.astimezone(ZoneInfo(tz_name)).isoformat() == local


def test_an_ordinary_local_time_has_no_dst_rule():
    instant = local_to_utc(datetime(2031, 3, 9, 12), ZoneInfo("America/New_York"))
    assert (instant.at, instant.dst) == (datetime(2031, 3, 9, 16, tzinfo=UTC), "")


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
)
def test_dates_at_the_ends_of_the_calendar_are_a_client_error(value):
    with pytest.raises(SendTimeError) as raised:
        parse_send_at(value, None)
    assert raised.value.field == "sendAt"
    with pytest.raises(SendTimeError):
        parse_send_at("9999-12-31T23:59:59", "America/New_York")


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Mars/Olympus", ""])
def test_host_files_and_unknown_names_are_not_zones(name):
    with pytest.raises(SendTimeError):
        zone(name)


@pytest.mark.parametrize(
    "local, expected",
    [
        ("2031-12-01T22:30", "2031-12-02T08:00"),  # evening: next morning
        ("2031-12-02T06:00", "2031-12-02T08:00"),  # early morning: same morning
        ("2031-12-01T21:00", "2031-12-02T08:00"),  # the start is inside
        ("2031-12-02T08:00", None),  # the end is outside
        ("2031-12-01T12:00", None),
    ],
)
def test_quiet_hours_across_midnight(local, expected):
    tz = ZoneInfo("America/New_York")
    instant = datetime.fromisoformat(local).replace(tzinfo=tz)
    end = quiet_hours_end(instant, tz, clock(21), clock(8))
    expected_at = expected and datetime.fromisoformat(expected).replace(tzinfo=tz)
    assert end == expected_at


def test_quiet_hours_ending_in_a_repeated_hour_end_after_the_message():
    # 01:15 EST is the second pass through 01:00-02:00 on 2031-11-02; the first
    # 01:30 (EDT) is already past, so the window ends at 01:30 EST.
    tz = ZoneInfo("America/New_York")
    instant = datetime(2031, 11, 2, 6, 15, tzinfo=UTC)
    end = quiet_hours_end(instant, tz, clock(0), clock(1, 30))
    assert end == datetime(2031, 11, 2, 6, 30, tzinfo=UTC)


def test_local_times_are_shown_in_the_workspace_zone_without_a_request_zone():
    workspace = Workspace(workspace_id="w", timezone="Europe/London")
    plan = plan_send(now=NOW, delay_ms=1000, workspace=workspace)
    assert plan.timezone_name == "Europe/London"
    assert not plan.deferred_reason


# --- through the API -------------------------------------------------------------


@pytest.fixture
def far_ahead(settings):
    settings.MAX_DELAY_MS = TEN_YEARS_MS


@pytest.mark.django_db
@pytest.mark.parametrize("tz_name, wall, at, local, dst", DST_CASES)
def test_api_applies_the_dst_policy_and_reports_it(
    client, redis, far_ahead, tz_name, wall, at, local, dst
):
    response = post(
        client, "/api/schedule-sms", {**SMS_AT, "sendAt": wall, "timezone": tz_name}
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["success"] is True and body["message"] == "SMS scheduled successfully"
    assert (body["scheduledFor"], body["scheduledForLocal"]) == (at, local)
    assert (body["timezone"], body["dst"]) == (tz_name, dst)
    assert "deferred" not in body
    job = Job.objects.get(pk=body["jobId"])
    assert (job.due_at, job.requested_for, job.timezone) == (utc(at), utc(at), tz_name)
    assert job.status == "delayed"
    assert scheduled_at(body["jobId"]) == utc(at).timestamp()


@pytest.mark.django_db
def test_api_leaves_dst_out_when_no_rule_applied(client, far_ahead):
    body = post(
        client,
        "/api/schedule-sms",
        {**SMS_AT, "sendAt": "2031-03-09T12:00:00", "timezone": "America/New_York"},
    ).json()
    assert body["scheduledFor"] == "2031-03-09T16:00:00Z"
    assert body["scheduledForLocal"] == "2031-03-09T12:00:00-04:00"
    assert "dst" not in body


@pytest.mark.django_db
def test_an_instant_with_an_offset_needs_no_zone(client, far_ahead):
    body = post(
        client, "/api/schedule-sms", {**SMS_AT, "sendAt": "2031-12-01T09:00:00-05:00"}
    ).json()
    assert body["scheduledFor"] == "2031-12-01T14:00:00Z"
    assert (body["scheduledForLocal"], body["timezone"]) == (None, None)

    named = {**SMS_AT, "sendAt": "2031-12-01T09:00:00-05:00", "timezone": "Asia/Tokyo"}
    body = post(client, "/api/schedule-sms", named).json()
    assert body["scheduledFor"] == "2031-12-01T14:00:00Z"
    assert body["scheduledForLocal"] == "2031-12-01T23:00:00+09:00"


@pytest.mark.django_db
def test_a_local_time_without_a_zone_uses_the_workspace_zone(client, far_ahead):
    Workspace.objects.create(workspace_id=SMS["workspaceId"], timezone="Asia/Tokyo")
    body = post(client, "/api/schedule-sms", {**SMS_AT, "sendAt": "2031-12-01T09:00"})
    assert body.json()["scheduledFor"] == "2031-12-01T00:00:00Z"
    assert body.json()["timezone"] == "Asia/Tokyo"
    assert Job.objects.get().timezone == "Asia/Tokyo"


@pytest.mark.django_db
def test_a_delay_is_shown_in_the_workspace_zone(client):
    Workspace.objects.create(workspace_id=SMS["workspaceId"], timezone="Europe/Paris")
    body = post(client, "/api/schedule-sms", {**SMS, "delay": 60_000}).json()
    local = datetime.fromisoformat(body["scheduledForLocal"])
    assert local == utc(body["scheduledFor"])
    assert (
        local.utcoffset()
        == utc(body["scheduledFor"]).astimezone(ZoneInfo("Europe/Paris")).utcoffset()
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, field",
    [
        ({"sendAt": "2031-12-01T09:00:00"}, "timezone"),  # no zone, no workspace row
        ({"sendAt": "2031-12-01T09:00:00", "timezone": "Mars/Olympus"}, "timezone"),
        ({"sendAt": "2031-12-01T09:00:00", "timezone": "localtime"}, "timezone"),
        ({"sendAt": "2031-12-01T09:00:00", "timezone": 5}, "timezone"),
        ({"sendAt": "next tuesday", "timezone": "Europe/London"}, "sendAt"),
        ({"sendAt": "2031-02-30T09:00:00Z"}, "sendAt"),
        ({"sendAt": ""}, "sendAt"),
        ({"sendAt": 1_900_000_000}, "sendAt"),
        ({"sendAt": "0001-01-01T00:00:00+01:00"}, "sendAt"),
        ({"sendAt": "2031-12-01T09:00:00Z", "delay": 0}, "sendAt"),
        ({"sendAt": "2031-12-01T09:00:00Z", "delay": 5000}, "sendAt"),
        ({"delay": 0, "respectQuietHours": "no"}, "respectQuietHours"),
        ({"delay": 1000, "timezone": "Nowhere"}, "timezone"),
    ],
)  # fmt: skip
def test_bad_send_times_are_400_and_nothing_is_made(client, redis, fields, field):
    keys_before = redis.dbsize()
    response = post(client, "/api/schedule-sms", {**SMS_AT, **fields})

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and field in body["details"]
    assert Job.objects.count() == 0
    assert redis.dbsize() == keys_before


@pytest.mark.django_db
def test_beyond_max_delay_is_400(client, redis):
    later = (datetime.now(UTC) + timedelta(days=366)).isoformat()
    response = post(client, "/api/schedule-sms", {**SMS_AT, "sendAt": later})
    assert response.status_code == 400
    assert "MAX_DELAY_MS" in response.json()["details"]["sendAt"][0]
    assert Job.objects.count() == 0 and redis.dbsize() == 0


@pytest.mark.django_db
def test_a_send_time_in_the_past_is_sent_at_once(client, redis):
    before = datetime.now(UTC)
    body = post(
        client, "/api/schedule-sms", {**SMS_AT, "sendAt": "2020-01-01T09:00:00Z"}
    ).json()
    assert utc(body["scheduledFor"]) >= before
    job = Job.objects.get(pk=body["jobId"])
    assert (job.status, job.queue) == ("waiting", "send-sms-queue")
    assert queued_ids(redis, "send-sms-queue") == [body["jobId"]]
    assert scheduled_count() == 0


# --- quiet hours -------------------------------------------------------------------


def quiet(start: clock, end: clock, tz: str = "America/New_York") -> Workspace:
    return Workspace.objects.create(
        workspace_id=SMS["workspaceId"],
        timezone=tz,
        quiet_hours_start=start,
        quiet_hours_end=end,
    )


def schedule_at(client, wall: str, **extra):
    body = {**SMS_AT, "sendAt": wall, "timezone": "America/New_York", **extra}
    response = post(client, "/api/schedule-sms", body)
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.mark.django_db
def test_quiet_hours_across_midnight_defer_to_the_morning(client, redis, far_ahead):
    quiet(clock(21), clock(8))
    body = schedule_at(client, "2031-12-01T22:30:00")

    assert body["scheduledFor"] == "2031-12-02T13:00:00Z"
    assert body["scheduledForLocal"] == "2031-12-02T08:00:00-05:00"
    assert body["deferred"] == {
        "reason": "quiet-hours",
        "requestedFor": "2031-12-02T03:30:00Z",
        "requestedForLocal": "2031-12-01T22:30:00-05:00",
    }
    job = Job.objects.get(pk=body["jobId"])
    assert job.due_at == job.scheduled_for == utc("2031-12-02T13:00:00Z")
    assert job.requested_for == utc("2031-12-02T03:30:00Z")
    assert job.deferred_reason == "quiet-hours"
    assert scheduled_at(body["jobId"]) == job.due_at.timestamp()


@pytest.mark.django_db
def test_a_same_day_window_defers_to_its_end(client, far_ahead):
    quiet(clock(12), clock(14))
    inside = schedule_at(client, "2031-12-01T13:15:00")
    outside = schedule_at(client, "2031-12-01T14:00:00")

    assert inside["scheduledForLocal"] == "2031-12-01T14:00:00-05:00"
    assert inside["deferred"]["reason"] == "quiet-hours"
    assert outside["scheduledForLocal"] == "2031-12-01T14:00:00-05:00"
    assert "deferred" not in outside


@pytest.mark.django_db
def test_respect_quiet_hours_false_sends_at_the_asked_time(client, far_ahead):
    quiet(clock(21), clock(8))
    body = schedule_at(client, "2031-12-01T22:30:00", respectQuietHours=False)

    assert body["scheduledForLocal"] == "2031-12-01T22:30:00-05:00"
    assert "deferred" not in body
    assert Job.objects.get().deferred_reason == ""


@pytest.mark.django_db
def test_a_message_due_now_inside_quiet_hours_waits_in_the_scheduler(client, redis):
    # A window around the present moment, in UTC: the message may not go now.
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).time().replace(microsecond=0)
    end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    quiet(start, end, tz="UTC")
    body = post(client, "/api/schedule-sms", SMS).json()

    assert body["deferred"]["reason"] == "quiet-hours"
    job = Job.objects.get(pk=body["jobId"])
    assert (job.status, job.queue) == ("delayed", "scheduled-sms-queue")
    assert job.due_at > now
    assert queued_ids(redis, "send-sms-queue") == []


# --- replays, job status, delivery -----------------------------------------------


@pytest.mark.django_db
def test_an_idempotent_replay_answers_the_same(client, far_ahead):
    quiet(clock(21), clock(8))
    wall = {"sendAt": "2031-11-02T01:30:00", "timezone": "America/New_York"}
    request = {**SMS_AT, **wall}
    first = post(client, "/api/schedule-sms", request, HTTP_IDEMPOTENCY_KEY="k1")
    again = post(client, "/api/schedule-sms", request, HTTP_IDEMPOTENCY_KEY="k1")

    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["dst"] == AMBIGUOUS
    assert first.json()["deferred"]["reason"] == "quiet-hours"
    assert again.json() == first.json()
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_job_status_shows_requested_and_due_times(client, far_ahead):
    quiet(clock(21), clock(8))
    job_id = schedule_at(client, "2031-12-01T22:30:00")["jobId"]
    body = client.get(f"/api/job-status/{job_id}").json()

    assert body["requestedFor"] == "2031-12-02T03:30:00Z"
    assert body["dueAt"] == body["scheduledFor"] == "2031-12-02T13:00:00Z"
    assert body["scheduledForLocal"] == "2031-12-02T08:00:00-05:00"
    assert (body["timezone"], body["deferredReason"]) == (
        "America/New_York",
        "quiet-hours",
    )


@pytest.mark.django_db(transaction=True)
def test_a_job_with_a_send_time_is_delivered_not_before_it(client, backend, work):
    send_at = datetime.now(UTC) + timedelta(seconds=1.5)
    body = post(
        client, "/api/schedule-sms", {**SMS_AT, "sendAt": send_at.isoformat()}
    ).json()
    assert Job.objects.get(pk=body["jobId"]).status == "delayed"

    work(lambda: backend.for_job(body["jobId"]))

    [callback] = backend.for_job(body["jobId"], "/send-sms")
    assert callback.at >= send_at.timestamp()
    assert Job.objects.get(pk=body["jobId"]).status == "completed"


# --- the admin and the test page ---------------------------------------------------


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return user


WORKSPACE_FORM = {
    "workspace_id": "w1",
    "timezone": "Europe/London",
    "quiet_hours_start": "21:00",
    "quiet_hours_end": "08:00",
    "rate_limit": "",
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, error",
    [
        ({"timezone": "Europe/Londres"}, "Unknown time zone"),
        ({"quiet_hours_end": ""}, "both ends"),
        ({"quiet_hours_end": "21:00"}, "different times"),
    ],
)
def test_admin_refuses_a_bad_workspace(client, staff, change, error):
    response = client.post("/admin/jobs/workspace/add/", {**WORKSPACE_FORM, **change})
    assert response.status_code == 200
    assert error in html.unescape(response.content.decode())
    assert Workspace.objects.count() == 0


@pytest.mark.django_db
def test_admin_saves_a_workspace_and_lists_it(client, staff):
    response = client.post("/admin/jobs/workspace/add/", WORKSPACE_FORM)
    assert response.status_code == 302
    workspace = Workspace.objects.get(workspace_id="w1")
    assert (workspace.quiet_hours_start, workspace.quiet_hours_end) == (
        clock(21),
        clock(8),
    )
    page = client.get("/admin/jobs/workspace/", {"q": "w1"}).content.decode()
    assert "Europe/London" in page and "Rate limit" in page


@pytest.mark.django_db
def test_rules_are_cached_and_an_admin_change_applies_at_once(client, staff):
    Workspace.objects.create(workspace_id="w1", timezone="Asia/Tokyo")
    assert workspace_rules("w1").timezone == "Asia/Tokyo"
    # Changed behind the cache's back (another process): still the cached row.
    Workspace.objects.filter(workspace_id="w1").update(timezone="Europe/Paris")
    assert workspace_rules("w1").timezone == "Asia/Tokyo"

    row = Workspace.objects.get(workspace_id="w1")
    response = client.post(f"/admin/jobs/workspace/{row.pk}/change/", WORKSPACE_FORM)

    assert response.status_code == 302
    assert workspace_rules("w1").timezone == "Europe/London"


@pytest.mark.django_db
def test_the_test_page_schedules_at_a_local_time(client, settings):
    settings.DEBUG = True
    settings.MAX_DELAY_MS = TEN_YEARS_MS
    form = {"phoneNumber": "+14155550123", "message": "hi", "contactId": "1"}
    local = {"sendAt": "2031-03-09T02:30", "timezone": "America/New_York"}
    response = client.post("/test-sms", {**form, "workspaceId": "w", **local})

    assert response.status_code == 200
    assert Job.objects.get().due_at == utc("2031-03-09T07:00:00Z")
    assert NONEXISTENT in html.unescape(response.content.decode())

    both = {**form, "workspaceId": "w", "delay": "0", **local}
    response = client.post("/test-sms", both)
    assert response.status_code == 400
    assert 'id="errors-sendAt"' in response.content.decode()
    assert Job.objects.count() == 1
