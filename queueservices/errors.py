"""Every error the service returns has one shape:

{"success": false, "error": "<one readable sentence>", "details": {field: [messages]}}
"""

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
)
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from jobs.services import IdempotencyConflict, QueueUnavailable
from queueservices.parsers import too_large


def error_body(error: str, details: dict | None = None) -> dict:
    return {"success": False, "error": error, "details": details or {}}


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: known errors become 4xx/503 in the common shape."""
    if isinstance(exc, QueueUnavailable):
        body = error_body(
            "The queue is unavailable right now; nothing was scheduled. Retry shortly."
        )
        return Response(body, status=503, headers={"Retry-After": "1"})
    if isinstance(exc, IdempotencyConflict):
        return Response(error_body(str(exc)), status=409)
    if isinstance(exc, RequestDataTooBig):
        # Django's DATA_UPLOAD_MAX_MEMORY_SIZE (= MAX_REQUEST_BYTES), met where DRF
        # reads request.body: the same answer as parse_bounded's.
        exc = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = field_messages(exc.detail)
        error = (
            "Invalid request: "
            + "; ".join(
                f"{field}: {messages[0].rstrip('.')}"
                for field, messages in details.items()
            )
            + "."
        )
    else:
        details, error = {}, _sentence(exc.detail)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(exc.wait)
    return Response(error_body(error, details), status=exc.status_code, headers=headers)


def field_messages(detail) -> dict[str, list[str]]:
    if not isinstance(detail, dict):
        return {"body": _flatten(detail)}
    return {
        ("body" if field == "non_field_errors" else field): _flatten(value)
        for field, value in detail.items()
    }


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [
            f"{key}: {msg}" for key, value in detail.items() for msg in _flatten(value)
        ]
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten(item)]
    return [str(detail)]


def _sentence(detail) -> str:
    text = " ".join(_flatten(detail))
    return text if text.endswith(".") else text + "."


def bad_request(request, exception=None):
    """Django's own 400s (with DEBUG off): a missing or disallowed Host header
    (HTTP/1.0 clients, raw sockets), too many form fields."""
    if isinstance(exception, DisallowedHost):
        error = "Bad request: the Host header is missing or not in ALLOWED_HOSTS."
    else:
        error = "Bad request."
    return JsonResponse(error_body(error), status=400)


# Also answers a POST to an unknown /api/ path (urls.py's catch-all): a JSON 404,
# not the CSRF middleware's HTML 403 (it changes nothing, and API clients have no
# CSRF cookie).
@csrf_exempt
def not_found(request, exception=None):
    return JsonResponse(error_body(f"Not found: {request.path}"), status=404)


def server_error(request):
    return JsonResponse(error_body("Internal server error."), status=500)


class SchemaView(SpectacularAPIView):
    """/api/schema, whose errors (405) are JSON in the common shape, not YAML."""

    def handle_exception(self, exc):
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)
