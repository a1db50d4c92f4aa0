"""Slow and hanging backends: one worker process against a backend that takes
its time, and whether another workspace's messages still flow.

    .venv/bin/python bench/slow_backends.py

A fresh Redis, SQLite database, the Procfile's scheduler and one worker, and a
backend of its own (aiohttp, in this process) whose paths answer at once
(/send-sms), after 0.5 s (/slow) or after --hang-s (/hang); jobs pick the path
with metadata.callbackEndpoint. The jobs are written through jobs.services in a
child process. Scenarios, one after another on the same processes:

  slow    200 SMS of one workspace to /slow: seconds from the last one scheduled
          to the last callback answered.
  hang    10 SMS of workspace A to /hang, then 50 of workspace B: each B message's
          time from being scheduled to its callback (max and p50).
  full    A's and C's SMS to /hang, each 10 more than a workspace's share of the
          worker's slots: every slot busy; the most callbacks in flight and the
          worker's peak RSS meanwhile.
  flood   1,000 of A's SMS due against /hang (each held --hang-s, longer than
          B's whole run), then 500 of B's: B's callbacks/s and worst delay,
          next to the same 500 with nothing else running (alone).
"""

import argparse
import asyncio
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

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from benchsupport import django_says, free_port, redis_binary  # noqa: E402

SMS = {"phoneNumber": "+15550000001", "message": "x" * 160}


class Backend:
    """Records (jobId -> arrival, answered) for every callback, and the most
    callbacks it held at once."""

    def __init__(self, hang_s: float):
        self.arrived, self.answered = {}, {}
        self.hang_s = hang_s
        self.in_flight = self.most_in_flight = 0

    async def handle(self, request):
        body = await request.json()
        job_id = body["jobId"]
        self.arrived.setdefault(job_id, time.time())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        delay = {"/slow": 0.5, "/hang": self.hang_s}.get(request.path, 0)
        if delay:
            await asyncio.sleep(delay)
        self.in_flight -= 1
        self.answered[job_id] = time.time()
        return web.json_response({"ok": True})

    def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        loop.run_until_complete(site.start())
        threading.Thread(target=loop.run_forever, daemon=True).start()


class PeakRss:
    """The most resident memory of one process and its children (the worker's
    callbacks process), summed, sampled every 50 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._done = pid, 0, threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while not self._done.wait(0.05):
            total = sum(_rss_kib(pid) for pid in [self.pid, *_children(self.pid)])
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._done.set()
        return round(self.peak / 1024, 1)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _rss_kib(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(x.split()[1]) for x in lines if x.startswith("VmRSS:")), 0)


def schedule(specs: list) -> None:
    """In a child process: schedule (workspace, path, count) groups in order, with
    an optional pause before a group; prints each job's id and scheduled time."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from jobs.services import job_schedule

    jobs = []
    for workspace, path, count, pause_s in specs:
        time.sleep(pause_s)
        for n in range(count):
            payload = {**SMS, "contactId": str(n), "workspaceId": workspace}
            payload["metadata"] = {"callbackEndpoint": path}
            job, _ = job_schedule(job_type="sms", payload=payload)
            jobs.append((str(job.id), workspace, time.time()))
    print(json.dumps(jobs))


def worker_slots(env: dict) -> tuple[int, int]:
    """The worker's WORKER_CONCURRENCY and a workspace's share, as settings has them."""
    script = (
        "from django.conf import settings as s; "
        "print(s.WORKER_CONCURRENCY, s.WORKER_MAX_SLOTS_PER_WORKSPACE)"
    )
    slots, share = django_says(env, script).split()
    return int(slots), int(share)


def run_schedule(env: dict, specs: list) -> list:
    child = subprocess.run(
        [sys.executable, __file__, "--schedule", json.dumps(specs)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def wait_answered(backend: Backend, ids: list[str], timeout: float) -> None:
    deadline = time.time() + timeout
    while not all(job_id in backend.answered for job_id in ids):
        if time.time() > deadline:
            missing = sum(job_id not in backend.answered for job_id in ids)
            raise SystemExit(f"{missing} of {len(ids)} callbacks missing")
        time.sleep(0.05)


def delays(backend: Backend, jobs: list) -> list[float]:
    return sorted(backend.arrived[job_id] - at for job_id, _, at in jobs)


def main() -> None:
    if sys.argv[1:2] == ["--schedule"]:
        schedule(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang-s", type=float, default=6.0)
    parser.add_argument("--timeout-ms", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qs-slow-"))
    redis_port, backend_port = free_port(), free_port()
    backend = Backend(args.hang_s)
    backend.start(backend_port)
    url = f"http://127.0.0.1:{backend_port}"
    env = {
        **os.environ,
        "VAR_DIR": str(tmp),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SMS_API_URL": url,
        "EMAIL_API_URL": url,
        "CALLBACK_TIMEOUT_MS": str(args.timeout_ms),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "DEBUG": "false",
        "SECRET_KEY": "bench",
    }
    redis_args = ["--port", str(redis_port), "--save", "", "--appendonly", "no"]
    background = [
        subprocess.Popen([redis_binary(), *redis_args], stdout=subprocess.DEVNULL)
    ]
    try:
        time.sleep(0.5)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        procfile = dict(
            line.split(": ", 1)
            for line in (ROOT / "Procfile").read_text().splitlines()
            if line.strip()
        )
        for name in ["scheduler", "worker"]:
            background.append(
                subprocess.Popen(
                    ["bash", "-c", procfile[name]],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp / f"{name}.log", "w"),
                    start_new_session=True,
                )
            )
        time.sleep(3)  # the worker's start-up (imports)
        results = {}

        slow = run_schedule(env, [["slow", "/slow", 200, 0]])
        wait_answered(backend, [j for j, _, _ in slow], 60)
        last_scheduled = max(at for _, _, at in slow)
        results["slow_200x0.5s_done_after_last_scheduled_s"] = round(
            max(backend.answered[j] for j, _, _ in slow) - last_scheduled, 3
        )

        hang = run_schedule(env, [["A", "/hang", 10, 0], ["B", "/send-sms", 50, 0.5]])
        b_jobs = [job for job in hang if job[1] == "B"]
        wait_answered(backend, [j for j, _, _ in b_jobs], 30)
        late = delays(backend, b_jobs)
        results["hang_B_max_s"] = round(late[-1], 3)
        results["hang_B_p50_s"] = round(statistics.median(late), 3)
        wait_answered(backend, [j for j, w, _ in hang if w == "A"], 60)

        alone = run_schedule(env, [["B", "/send-sms", 500, 0]])
        wait_answered(backend, [j for j, _, _ in alone], 60)
        results["alone_B_500_per_s"] = round(500 / _span(backend, alone), 1)

        # Every slot taken: two workspaces' hanging callbacks, each over its share.
        worker = background[-1].pid
        slots, share = worker_slots(env)
        over = (share or slots) + 10
        peak, backend.most_in_flight = PeakRss(worker), 0
        full = run_schedule(env, [["A", "/hang", over, 0], ["C", "/hang", over, 0]])
        wait_answered(backend, [j for j, _, _ in full], 120)
        results["full_slots"] = slots
        results["full_most_in_flight"] = backend.most_in_flight
        results["full_worker_peak_rss_mib"] = peak.stop()

        peak, backend.most_in_flight = PeakRss(worker), 0
        flood = run_schedule(env, [["A", "/hang", 1000, 0], ["B", "/send-sms", 500, 1]])
        b_jobs = [job for job in flood if job[1] == "B"]
        wait_answered(backend, [j for j, _, _ in b_jobs], 120)
        late = delays(backend, b_jobs)
        results["flood_B_500_per_s"] = round(500 / _span(backend, b_jobs), 1)
        results["flood_B_max_s"] = round(late[-1], 3)
        results["flood_worker_peak_rss_mib"] = peak.stop()
        results["flood_most_in_flight"] = backend.most_in_flight
        print(json.dumps(results, indent=1))
    finally:
        redis_server, *processes = background
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        redis_server.terminate()
        for process in background:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        if sys.exc_info()[0] is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _span(backend: Backend, jobs: list) -> float:
    """From the first of the jobs scheduled to the last callback answered."""
    first = min(at for _, _, at in jobs)
    return max(backend.answered[j] for j, _, _ in jobs) - first


if __name__ == "__main__":
    main()
