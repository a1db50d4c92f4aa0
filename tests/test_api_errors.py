"""/api/* answers the one error shape whatever DEBUG is: no HTML debug pages."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "error", "details"}
    assert body["success"] is False and body["error"]


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/schedule-sms/extra", "/api/", "/api/job-status"]
)
def test_unknown_api_path_is_a_json_404(client, settings, debug, path):
    settings.DEBUG = debug
    assert_error_shape(client.get(path), 404)
    assert_error_shape(client.post(path, {}, content_type="application/json"), 404)


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    "method, path",
    [
        ("put", "/api/schedule-sms"),
        ("get", "/api/schedule-email"),
        ("delete", "/api/schedule-batch"),
        ("post", "/api/job-status/4293591d-2c83-4ced-9f74-476088f5524c"),
        ("post", "/api/schema"),
    ],
)
def test_wrong_method_is_a_json_405(client, settings, debug, method, path):
    settings.DEBUG = debug
    response = getattr(client, method)(path)
    assert_error_shape(response, 405)
    assert response.json()["error"].startswith(f'Method "{method.upper()}"')


@pytest.mark.parametrize("path", ["/api/nope", "/api/campaigns/a/b/cancel"])
def test_a_post_to_an_unknown_api_path_is_a_json_404_without_csrf(settings, path):
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)  # as a real client meets the service
    assert_error_shape(client.post(path, {}, content_type="application/json"), 404)


def test_a_request_without_a_host_header_is_a_json_400(client, settings):
    settings.DEBUG = False
    response = client.get("/api/jobs", HTTP_HOST="")
    assert_error_shape(response, 400)
    assert "Host header" in response.json()["error"]


def test_pages_outside_api_keep_django_404(client, settings):
    settings.DEBUG = False
    assert client.get("/no-such-page").status_code == 404
