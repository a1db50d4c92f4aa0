"""Limits on the request line and headers, answered in the API's error shape.

granian (hyper underneath) answers a request over its own limits itself, before any
Python runs, with an empty body: a request target over 65,534 bytes (414), a head
over its buffer (GRANIAN_HTTP1_BUFFER_SIZE, 417,792 bytes; up to about twice that
when the head arrives in few reads) or more than 100 headers (431), malformed HTTP
(400); docs/api.md lists them. The lower limits here answer the requests between
ours and granian's as every other error: {"success": false, "error": ..., ...}.
"""

import io
import json
from http import HTTPStatus

from django.conf import settings


class HeadLimits:
    """MAX_URL_BYTES and MAX_HEADER_BYTES, checked before a request goes further."""

    def __init__(self):
        self.max_url = settings.MAX_URL_BYTES
        self.max_headers = settings.MAX_HEADER_BYTES

    def refuse(self, environ, start_response) -> list[bytes] | None:
        """The answer to a request over a limit (started), else None."""
        url = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if url > self.max_url:
            error = f"The request URL is longer than {self.max_url} bytes."
            return _refuse(start_response, "414 URI Too Long", error)
        # Names and values as the WSGI server gives them: within a few bytes a
        # header of the wire (HTTP_X_KEY for "X-Key: ").
        size = sum(len(k) + len(v) for k, v in environ.items() if k[:5] == "HTTP_")
        if size > self.max_headers:
            error = f"The request headers are larger than {self.max_headers} bytes."
            return _refuse(start_response, "431 Request Header Fields Too Large", error)
        return None


def read_chunked(environ, start_response, limit: int) -> list[bytes] | None:
    """A chunked body (no Content-Length: granian hands it over whole, Django
    would read it as empty) read up to `limit` bytes and given its length, so that
    the request goes on as any other; over the limit, the answer (a 413, started)."""
    if "CONTENT_LENGTH" in environ:
        return None
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    raw = environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        error = f"The request body is larger than {limit} bytes."
        return _refuse(start_response, f"413 {HTTPStatus(413).phrase}", error)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    return None


def _refuse(start_response, status: str, error: str) -> list[bytes]:
    # As the API's errors (queueservices.errors.error_body), written as DRF writes
    # JSON; the request never reaches Django.
    body = json.dumps(
        {"success": False, "error": error, "details": {}}, separators=(",", ":")
    ).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]
