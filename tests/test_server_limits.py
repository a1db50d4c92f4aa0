"""Over-long request lines and headers, and malformed HTTP, sent through a raw socket
to the Procfile's web process (granian): what the app answers in the error shape,
and what granian still answers itself (docs/api.md, Errors)."""

import json
import socket

import pytest

from tests.support import answers, free_port, procfile, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


@pytest.fixture
def web(start_process) -> int:
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "DEBUG": "false",
           "SECRET_KEY": "limits", "WEB_CONCURRENCY": "1"}  # fmt: skip
    start_process("web", procfile()["web"], **env)
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), timeout=60)
    return port


def exchange(port: int, raw: bytes) -> tuple[int, dict, bytes]:
    """Send `raw`, read the answer until the server closes: status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may answer and close before it has read everything
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def dechunk(data: bytes) -> bytes:
    body = b""
    while True:
        size, _, rest = data.partition(b"\r\n")
        if int(size, 16) == 0:
            return body
        body, data = body + rest[: int(size, 16)], rest[int(size, 16) + 2 :]


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode("latin-1")


def assert_error_shape(answer, status: int) -> dict:
    got, headers, body = answer
    assert got == status, answer
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert set(error) == {"success", "error", "details"} and error["success"] is False
    return error


def test_a_url_or_headers_over_the_apps_limits_get_the_error_shape(web, settings):
    long_url = "/api/job-status/" + "a" * settings.MAX_URL_BYTES
    error = assert_error_shape(exchange(web, get(long_url)), 414)
    assert error["error"] == (
        f"The request URL is longer than {settings.MAX_URL_BYTES} bytes."
    )
    query = "/api/jobs?campaignId=" + "c" * settings.MAX_URL_BYTES
    assert_error_shape(exchange(web, get(query)), 414)

    padding = "X-Padding: " + "p" * settings.MAX_HEADER_BYTES
    error = assert_error_shape(exchange(web, get("/api/jobs", padding)), 431)
    assert error["error"] == (
        f"The request headers are larger than {settings.MAX_HEADER_BYTES} bytes."
    )
    many = [f"X-Many-{n}: " + "m" * 1000 for n in range(80)]
    assert_error_shape(exchange(web, get("/health", *many)), 431)
    # Just under both: the request goes on (an unknown job).
    fits = "/api/job-status/" + "a" * (settings.MAX_URL_BYTES - 100)
    near = "X-Padding: " + "p" * (settings.MAX_HEADER_BYTES - 1000)
    assert_error_shape(exchange(web, get(fits, near)), 404)


def test_a_body_over_the_limit_is_a_413_through_the_server(web, settings):
    body = b'{"pad": "' + b"x" * settings.MAX_REQUEST_BYTES + b'"}'
    head = (
        "POST /api/schedule-sms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    assert_error_shape(exchange(web, head.encode() + body), 413)


def chunked(body: bytes, size: int = 4096) -> bytes:
    """`body` in Transfer-Encoding: chunked, `size` bytes a chunk."""
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_a_chunked_body_is_read_as_any_other(web):
    # granian hands a chunked body over whole, without a Content-Length; Django
    # alone would read it as empty (a 400 for a valid request).
    body = json.dumps(
        {"phoneNumber": "+14155550123", "message": "chunked", "contactId": "c-1",
         "workspaceId": "ws-1", "delay": 3_600_000}
    ).encode()  # fmt: skip
    head = (
        "POST /api/schedule-sms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    status, _, answer = exchange(web, head.encode() + chunked(body, 16))
    assert status == 200, answer
    job_id = json.loads(answer)["jobId"]
    from jobs.models import Job

    assert Job.objects.get(pk=job_id).payload["message"] == "chunked"


def test_a_chunked_body_over_the_limit_is_a_413(web, settings):
    body = b'{"pad": "' + b"x" * settings.MAX_REQUEST_BYTES + b'"}'
    head = (
        "POST /api/schedule-sms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert_error_shape(exchange(web, head.encode() + chunked(body)), 413)


# What granian (hyper) answers before any Python runs: the status, an empty body. A
# change here (another server, another granian) must show up, and docs/api.md with it.
GRANIAN_OWN = {
    "a request target of 65,535 bytes": (get("/" + "a" * 65534), 414),
    # Over twice its buffer: a head between one and two buffers may come through,
    # depending on how the bytes arrive.
    "a head over granian's buffer": (get("/health", "X-P: " + "p" * 1_000_000), 431),
    "101 headers": (get("/health", *[f"X-H{n}: v" for n in range(99)]), 431),
    "a request line that is not HTTP": (b"GARBAGE\r\n\r\n", 400),
    "an unknown HTTP version": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    "a space in a header name": (get("/health", "Bad Name: v"), 400),
    "a NUL in a header value": (get("/health", "X-A: a\x00b"), 400),
    "two Content-Length headers": (
        b"POST /api/schedule-sms HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\nConnection: close\r\n\r\n{}",
        400,
    ),
    "a Content-Length in other digits": (
        "POST /api/schedule-sms HTTP/1.1\r\nHost: x\r\nContent-Length: ١٢\r\n"
        "Connection: close\r\n\r\n{}".encode(),
        400,
    ),
}


def test_what_granian_still_answers_itself(web):
    for what, (raw, status) in GRANIAN_OWN.items():
        got, headers, body = exchange(web, raw)
        assert (got, body) == (status, b""), what
        assert headers.get("content-length") == "0", what
    # The largest request target granian passes on is the app's to refuse.
    assert_error_shape(exchange(web, get("/" + "a" * 65533)), 414)


def test_a_request_without_host_gets_the_error_shape(web):
    for raw in (
        b"GET /api/jobs HTTP/1.0\r\n\r\n",
        b"GET /api/jobs HTTP/1.1\r\nConnection: close\r\n\r\n",
    ):
        error = assert_error_shape(exchange(web, raw), 400)
        assert "Host header" in error["error"]
