"""The pages in a real browser: headless Debian Chromium driven by Playwright."""

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

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


def queue_cell(page, queue: str, status: str):
    return page.locator(f"#queue-{queue} td[data-status={status}]")


def test_overview_refreshes_itself_without_a_reload_and_can_pause(
    page, live_server, client
):
    page.goto(f"{live_server.url}/admin/queues")
    page.evaluate("window.notReloaded = true")
    waiting = queue_cell(page, "scheduled-sms-queue", "delayed")
    assert waiting.inner_text() == "0"

    post(client, "/api/schedule-sms", {**SMS, "delay": 600_000})
    page.wait_for_function(
        "document.querySelector('#queue-scheduled-sms-queue td[data-status=delayed]')"
        ".innerText === '1'",
        timeout=6000,
    )
    assert page.evaluate("window.notReloaded") is True

    page.click("#refresh-toggle")
    assert "paused" in page.locator("#refresh-toggle").inner_text()
    post(client, "/api/schedule-sms", {**SMS, "delay": 600_000})
    page.wait_for_timeout(4500)
    assert waiting.inner_text() == "1"
    page.screenshot(path=SCREENSHOTS / "dashboard-refresh-paused.png", full_page=True)

    page.click("#refresh-toggle")
    page.wait_for_function(
        "document.querySelector('#queue-scheduled-sms-queue td[data-status=delayed]')"
        ".innerText === '2'",
        timeout=6000,
    )
    assert page.evaluate("window.notReloaded") is True


def test_clean_asks_for_confirmation_and_says_how_many(
    page, live_server, client, backend, work, settings
):
    settings.JOB_ATTEMPTS = 1
    ids = [post(client, "/api/schedule-sms", SMS).json()["jobId"] for _ in range(3)]
    for job_id in ids:
        backend.plan[job_id] = [500]
    work(until=lambda: Job.objects.filter(status="failed").count() == 3)
    old = timezone.now() - timedelta(hours=5)
    Job.objects.filter(pk__in=ids[:2]).update(finished_at=old)

    page.goto(f"{live_server.url}/admin/queues")
    row = page.locator("#queue-send-sms-queue")
    assert row.locator("button.retry-failed").inner_text() == "Retry 3 failed…"
    row.locator("select[name=status]").select_option("failed")
    row.locator("input[name=older_than_hours]").fill("2")
    row.locator("button.clean").click()
    warning = page.locator("#warning").inner_text()
    assert "Delete 2 failed job(s) of send-sms-queue" in warning
    assert "more than 2 hour(s) ago" in warning
    page.screenshot(path=SCREENSHOTS / "dashboard-confirm-clean.png", full_page=True)

    page.click("#cancel")
    assert Job.objects.count() == 3
    row.locator("select[name=status]").select_option("failed")
    row.locator("input[name=older_than_hours]").fill("2")
    row.locator("button.clean").click()
    page.click("#confirm")
    assert "deleted 2 failed job(s)" in page.locator(".messages").inner_text()
    assert list(Job.objects.values_list("id", flat=True)) == [uuid.UUID(ids[2])]


def test_pause_and_resume_a_queue_from_the_dashboard(
    page, live_server, client, backend, work
):
    page.goto(f"{live_server.url}/admin/queues")
    page.locator("#queue-send-sms-queue button.pause").click()
    assert page.locator("#queue-send-sms-queue .queue-paused").is_visible()
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    passes = iter(range(20))
    work(until=lambda: next(passes, None) is None)
    assert Job.objects.get(pk=job_id).status == "waiting"
    assert backend.to("/send-sms") == []
    page.wait_for_function(
        "document.querySelector('#queue-send-sms-queue td[data-status=waiting]')"
        ".innerText === '1'",
        timeout=6000,
    )
    page.screenshot(path=SCREENSHOTS / "dashboard-queue-paused.png", full_page=True)

    page.locator("#queue-send-sms-queue button.resume").click()
    assert page.locator("#queue-send-sms-queue .queue-paused").count() == 0
    work(until=lambda: Job.objects.get(pk=job_id).status == "completed")
    assert len(backend.for_job(job_id, "/send-sms")) == 1


def test_the_chart_shows_the_last_hour_and_follows_the_refresh(
    page, live_server, client, backend, work, settings
):
    settings.JOB_ATTEMPTS = 2
    settings.JOB_BACKOFF_MS = 50
    ids = [post(client, "/api/schedule-sms", SMS).json()["jobId"] for _ in range(4)]
    backend.plan[ids[0]] = [500, 500]  # retried once, then failed for good
    backend.plan[ids[1]] = [500]  # retried once, then completed
    work(
        until=lambda: (
            Job.objects.filter(status__in=["completed", "failed"]).count() == 4
        )
    )

    page.goto(f"{live_server.url}/admin/queues")
    page.wait_for_selector("#chart-counts canvas")
    page.wait_for_selector("#chart-lateness canvas")
    data = page.evaluate(
        "JSON.parse(document.getElementById('chart-data').textContent)"
    )
    assert (sum(data["completed"]), sum(data["failed"]), sum(data["retried"])) == (
        3,
        1,
        2,
    )
    assert len(data["minutes"]) == 60 and any(
        v is not None for v in data["lateness_p95_ms"]
    )
    legend = page.locator("#chart-counts .u-legend").inner_text()
    assert "completed" in legend and "failed" in legend and "retried" in legend
    drawn = int(page.evaluate("document.body.dataset.chartsDrawn"))
    page.wait_for_function(
        f"+document.body.dataset.chartsDrawn > {drawn}", timeout=6000
    )
    # Still one chart each: the refresh fed them, it did not stack new ones.
    assert page.locator("#chart-counts canvas").count() == 1
    page.screenshot(path=SCREENSHOTS / "dashboard-chart.png", full_page=True)


def test_ids_are_short_and_copy_and_the_admin_table_fits_1280_px(
    browser, live_server, client, settings
):
    settings.BULL_BOARD_USERNAME = CREDENTIALS["username"]
    settings.BULL_BOARD_PASSWORD = CREDENTIALS["password"]
    for _ in range(3):
        post(client, "/api/schedule-sms", {**SMS, "delay": 600_000})
    Job.objects.update(last_error="HTTP 500: " + "the backend said no " * 20)
    User.objects.create_superuser("staff", "staff@example.com", "staff-pass")
    context = browser.new_context(
        http_credentials=CREDENTIALS, viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/queues/jobs")
        job = Job.objects.order_by("-created_at").first()
        assert page.locator("code.id").first.inner_text() == str(job.id)[-8:]
        page.locator("button.copy").first.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == str(job.id)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=SCREENSHOTS / "dashboard-job-list.png", full_page=True)

        page.goto(f"{live_server.url}/admin/login/?next=/admin/jobs/job/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "staff-pass")
        page.click("input[type=submit]")
        page.wait_for_selector("#result_list")
        assert page.locator("#result_list code.id").count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        # The table itself fits: no scrolling inside its box either.
        fits = "el => el.scrollWidth <= el.parentElement.clientWidth"
        assert page.locator("#result_list").evaluate(fits)
        page.screenshot(path=SCREENSHOTS / "admin-job-list-1280.png", full_page=True)
    finally:
        context.close()
