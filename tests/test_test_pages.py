"""/test-email and /test-sms: the seed's manual test form, through the real service."""

import html
import re

import pytest
from django.test import Client

from jobs.models import Job
from tests.support import basic

pytestmark = pytest.mark.django_db

EMAIL_FORM = {
    "to": "test@example.com",
    "subject": "Hello",
    "html": "<p>Hi</p>",
    "contactId": "123456",
    "workspaceId": "66338",
    "delay": "60000",
}


@pytest.fixture(autouse=True)
def local_development(settings):
    # Django runs tests with DEBUG off; the pages are open in local development.
    settings.DEBUG = True


def test_form_renders_every_field(client):
    page = client.get("/test-email").content.decode()
    for name in ["to", "subject", "html", "contactId", "workspaceId", "delay"]:
        assert f'name="{name}"' in page
    assert "csrfmiddlewaretoken" in page


def test_submitting_schedules_through_the_service_and_shows_the_response(client):
    response = client.post("/test-email", EMAIL_FORM)

    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.type, job.status, job.queue) == (
        "email",
        "delayed",
        "scheduled-email-queue",
    )
    assert job.payload["delay"] == 60000
    page = html.unescape(response.content.decode())
    assert '"success": true' in page and str(job.id) in page
    assert f"/admin/queues/jobs/{job.id}" in page


def test_sms_page_schedules_an_sms(client):
    form = {"phoneNumber": "+14155550123", "message": "hi", "contactId": "1"}
    response = client.post("/test-sms", {**form, "workspaceId": "w", "delay": "0"})
    assert response.status_code == 200
    assert Job.objects.get().type == "sms"


def test_errors_are_shown_next_to_the_fields_and_nothing_is_scheduled(client):
    bad = {**EMAIL_FORM, "to": "nope", "delay": "-5", "contactId": ""}
    response = client.post("/test-email", bad)

    assert response.status_code == 400
    page = response.content.decode()
    for field in ["to", "delay", "contactId"]:
        assert re.search(rf'id="errors-{field}"', page), field
    assert 'value="nope"' in page  # what was typed is kept
    assert Job.objects.count() == 0


def test_non_numeric_delay_is_a_field_error(client):
    response = client.post("/test-email", {**EMAIL_FORM, "delay": "soon"})
    assert response.status_code == 400
    assert 'id="errors-delay"' in response.content.decode()


def test_csrf_is_required():
    response = Client(enforce_csrf_checks=True).post("/test-email", EMAIL_FORM)
    assert response.status_code == 403
    assert Job.objects.count() == 0


def test_with_debug_off_the_pages_need_the_dashboard_credentials(client, settings):
    settings.DEBUG = False
    settings.BULL_BOARD_PASSWORD = "pw"
    assert client.get("/test-email").status_code == 401
    assert client.get("/test-sms").status_code == 401
    assert client.get("/test-email", **basic("admin", "pw")).status_code == 200
