"""Polling: GET /api/job-status/{id} requests/s with 50 clients.

    .venv/bin/python bench/job_status.py --jobs 5000 --clients 50 --seconds 10

Campaign apps poll the status of every message they sent. This starts what
bench/batch.py starts (its own redis-server, a fresh SQLite database, the
Procfile's web process; no worker), schedules `--jobs` messages through
/api/schedule-batch, then `--clients` keep-alive connections (aiohttp, one asyncio
loop) ask for random ones of them for `--seconds`. Prints requests/s, latency
p50/p99 and the web processes' CPU per request (from /proc, all of granian's
processes). Every answer must be 200 with the job's id.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from batch import batch_body, post_all, start_web
from benchsupport import tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


async def poll(port: int, ids: list[str], clients: int, seconds: float):
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client():
            while time.perf_counter() < deadline:
                job_id = random.choice(ids)
                started = time.perf_counter()
                url = f"http://127.0.0.1:{port}/api/job-status/{job_id}"
                async with session.get(url) as response:
                    body = await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 200 or json.loads(body)["jobId"] != job_id:
                    errors.append((response.status, body[:200]))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started, latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qs-status-"))
    env, server, web, web_port = start_web(tmp)
    try:
        size = 1000
        bodies = [batch_body(size, 0, b) for b in range(max(1, args.jobs // size))]
        ids = post_all(web_port, bodies, 2, size, collect=True)
        # A short warm-up (connections, caches), then the measured run.
        asyncio.run(poll(web_port, ids, args.clients, 1))
        cpu_before = tree_cpu_seconds([web.pid])
        elapsed, latencies, errors = asyncio.run(
            poll(web_port, ids, args.clients, args.seconds)
        )
        cpu = tree_cpu_seconds([web.pid]) - cpu_before
        if errors:
            raise SystemExit(f"{len(errors)} bad answers, e.g. {errors[0]}")
        latencies.sort()
        count = len(latencies)
        print(
            f"job-status: {count / elapsed:,.0f} requests/s with {args.clients} "
            f"clients over {elapsed:.1f} s; p50 "
            f"{statistics.median(latencies) * 1000:.1f} ms, p99 "
            f"{latencies[int(count * 0.99)] * 1000:.1f} ms; web CPU "
            f"{cpu * 1000 / count:.2f} ms per request ({count:,} requests, "
            f"{len(ids):,} jobs, SQLite)"
        )
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(30)
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
