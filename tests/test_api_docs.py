"""/api/docs: Swagger UI served entirely by the service, as the Procfile runs it."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from jobs.apikeys import apikey_create
from tests.conftest import OUTPUT_DIR
from tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    answers,
    free_port,
    procfile,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(start_process):
    """The Procfile's web process with DEBUG off: static files come from WhiteNoise."""
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "DEBUG": "false"}
    start_process("web", procfile()["web"], SECRET_KEY="docs-test", **env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/health"), timeout=30, message="web to answer")
    return base


def referenced_urls(html: str) -> list[str]:
    """Every src/href of the page and the schema URL its script loads."""
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    urls += re.findall(r'url: "([^"]+)"', html)
    return urls


@pytest.mark.processes
def test_docs_page_and_every_asset_it_references_answer_200(web):
    page = requests.get(f"{web}/api/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    urls = referenced_urls(page.text)
    # The stylesheet, both scripts, the favicon and the schema.
    assert len(urls) == 5, urls
    assert "/api/schema" in urls
    for url in urls:
        assert not urlsplit(url).netloc, f"{url} is not served by this service"
        answer = requests.get(web + url, timeout=10)
        assert answer.status_code == 200, url
        assert answer.content, url
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls)


def test_docs_stay_open_when_api_keys_are_required(client, settings):
    settings.API_KEYS_REQUIRED = "true"
    apikey_create(name="ci")
    assert client.post("/api/schedule-sms", {}).status_code == 401
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/schema").status_code == 200


@pytest.mark.parametrize("query", ["?format=json", "?format=openapi", "?lang=xx"])
def test_odd_queries_do_not_break_the_docs_page(client, query):
    assert client.get(f"/api/docs{query}").status_code in (200, 404)


@pytest.mark.processes
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Chromium not found at {CHROMIUM}: install it with "
    "`apt-get install -y chromium` (make test does) or set CHROMIUM to its path",
)
def test_docs_render_in_a_browser_with_no_outside_network(web):
    from playwright.sync_api import sync_playwright

    screenshots = OUTPUT_DIR / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []

    def only_this_service(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.route("**/*", only_this_service)
            page.goto(f"{web}/api/docs")
            operation = page.locator(".opblock-summary-path", has_text="schedule-sms")
            operation.first.wait_for()
            assert page.locator(".opblock-post").count() >= 2
            page.screenshot(path=screenshots / "api-docs.png", full_page=True)
        finally:
            browser.close()
    assert outside == []
