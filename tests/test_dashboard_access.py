"""Every URL under /admin/queues needs the dashboard credentials or a staff login."""

import uuid

import pytest

from jobs.models import Job
from tests.support import basic

pytestmark = pytest.mark.django_db

JOB_ID = uuid.uuid4()
DASHBOARD_URLS = [
    ("get", "/admin/queues"),
    ("get", "/admin/queues/"),
    ("get", "/admin/queues/jobs"),
    ("get", f"/admin/queues/jobs/{JOB_ID}"),
    ("post", f"/admin/queues/jobs/{JOB_ID}/retry"),
    ("post", f"/admin/queues/jobs/{JOB_ID}/remove"),
    ("post", f"/admin/queues/jobs/{JOB_ID}/promote"),
    ("post", "/admin/queues/queues/send-sms-queue/retry-failed"),
    ("post", "/admin/queues/queues/send-sms-queue/clean-completed"),
    ("get", "/admin/queues/anything/else"),
]


@pytest.fixture(autouse=True)
def credentials(settings):
    settings.BULL_BOARD_USERNAME = "ops"
    settings.BULL_BOARD_PASSWORD = "s3cret-pass"


@pytest.mark.parametrize(("method", "url"), DASHBOARD_URLS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("ops", "wrong"),
        basic("other", "s3cret-pass"),
        basic("", ""),
        {"HTTP_AUTHORIZATION": "Basic !!!notbase64"},
        {"HTTP_AUTHORIZATION": "Bearer s3cret-pass"},
    ],
    ids=["none", "wrong-password", "wrong-user", "empty", "garbage", "bearer"],
)
def test_no_or_wrong_credentials_get_401_with_a_challenge(client, method, url, headers):
    response = getattr(client, method)(url, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "url"), [u for u in DASHBOARD_URLS if u[0] == "get"]
)
def test_right_credentials_are_let_in(client, method, url):
    response = client.get(url, **basic("ops", "s3cret-pass"))
    assert response.status_code in (200, 404)
    expected = 404 if url.endswith(("else", str(JOB_ID))) else 200
    assert response.status_code == expected


def test_a_staff_session_is_let_in_and_a_plain_user_is_not(client, django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(user)
    assert client.get("/admin/queues").status_code == 401
    user.is_staff = True
    user.save()
    assert client.get("/admin/queues").status_code == 200


def test_actions_need_a_csrf_token(settings):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        f"/admin/queues/jobs/{JOB_ID}/retry", **basic("ops", "s3cret-pass")
    )
    assert response.status_code == 403


def test_empty_password_disables_basic_auth(client, settings):
    settings.BULL_BOARD_PASSWORD = ""
    assert client.get("/admin/queues", **basic("ops", "")).status_code == 401


def test_weak_or_empty_password_is_reported_when_debug_is_off(settings):
    from queueservices.checks import dashboard_password

    settings.DEBUG = False
    settings.BULL_BOARD_PASSWORD = ""
    assert [m.id for m in dashboard_password(None)] == ["queueservices.E001"]
    settings.BULL_BOARD_PASSWORD = "admin123"
    assert [m.id for m in dashboard_password(None)] == ["queueservices.W001"]
    settings.BULL_BOARD_PASSWORD = "a-long-random-value"
    assert dashboard_password(None) == []
    settings.DEBUG = True
    settings.BULL_BOARD_PASSWORD = ""
    assert dashboard_password(None) == []
