"""The pages in a real browser: headless Debian Chromium driven by Playwright."""

import os
from pathlib import Path

import pytest

from jobs.models import Job
from tests.conftest import OUTPUT_DIR
from tests.support import CHROMIUM, CHROMIUM_ARGS, SMS, post

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"Chromium not found at {CHROMIUM}: install it with "
        "`apt-get install -y chromium` (make test does) or set CHROMIUM to its path",
        allow_module_level=True,
    )

# Playwright's sync API keeps an event loop running in this thread, which Django
# takes for async code; the ORM calls here are plain synchronous test code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.django_db(transaction=True)
SCREENSHOTS = OUTPUT_DIR / "screenshots"
CREDENTIALS = {"username": "ops", "password": "browser-pass"}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, settings):
    settings.BULL_BOARD_USERNAME = CREDENTIALS["username"]
    settings.BULL_BOARD_PASSWORD = CREDENTIALS["password"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        http_credentials=CREDENTIALS, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_test_email_page_schedules_and_links_to_the_job(
    page, live_server, backend, work
):
    page.goto(f"{live_server.url}/test-email")
    page.fill("#id_to", "ann@example.com")
    page.fill("#id_subject", "Browser test")
    page.fill("#id_html", "<p>Hello from Chromium</p>")
    page.fill("#id_contactId", "contact-7")
    page.fill("#id_workspaceId", "ws-7")
    page.fill("#id_delay", "0")
    page.click("#submit")

    result = page.locator("#result").inner_text()
    job = Job.objects.get()
    assert str(job.id) in result and '"success": true' in result
    page.screenshot(path=SCREENSHOTS / "test-email-submitted.png", full_page=True)

    work(until=lambda: Job.objects.get().status == "completed")
    page.click("#job-link")
    assert page.locator("#job-status").inner_text() == "completed"
    assert "ann@example.com" in page.content()
    page.screenshot(path=SCREENSHOTS / "job-page.png", full_page=True)
    [call] = backend.for_job(str(job.id))
    assert call.body["html"] == "<p>Hello from Chromium</p>"


def test_field_errors_show_in_the_browser(page, live_server):
    page.goto(f"{live_server.url}/test-sms")
    page.fill("#id_phoneNumber", "555-1234")
    page.click("#submit")
    assert "E.164" in page.locator("#errors-phoneNumber").inner_text()
    page.screenshot(path=SCREENSHOTS / "test-sms-errors.png", full_page=True)
    assert Job.objects.count() == 0


def test_operator_retries_a_failed_job_from_the_dashboard(
    page, live_server, client, backend, work, settings
):
    settings.JOB_ATTEMPTS = 1
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [500]
    work(until=lambda: Job.objects.get(pk=job_id).status == "failed")

    page.goto(f"{live_server.url}/admin/queues")
    assert page.locator("#stat-failed").inner_text() == "1"
    page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)
    page.goto(f"{live_server.url}/admin/queues/jobs?status=failed")
    page.click(f"a[href='/admin/queues/jobs/{job_id}']")
    assert page.locator("#job-status").inner_text() == "failed"
    page.click("#retry")
    assert page.locator("#job-status").inner_text() == "waiting"

    work(until=lambda: Job.objects.get(pk=job_id).status == "completed")
    page.reload()
    assert page.locator("#job-status").inner_text() == "completed"
    page.screenshot(path=SCREENSHOTS / "job-retried.png", full_page=True)
    answers = [
        c.headers["X-Queue-Attempt"] for c in backend.for_job(job_id, "/send-sms")
    ]
    assert answers == ["1", "2"]
