"""CPU time per API request, in-process: the WSGI application called directly.

No HTTP server and no load: this measures what the web process itself spends on a
request (Django, DRF, validation, the row, the Redis call), so it can run on a busy
machine and compares two versions of the code in the same run.

    python bench/cpu_per_request.py [-n 2000] [--rounds 5] [--profile SCENARIO]

Scenarios: sms (no key), sms-key (a fresh Idempotency-Key each), status (GET
/api/job-status/{id}), batch (1,000 messages a request, as bench/batch.py sends).
Prints the median of the rounds, in ms of process CPU per request.
"""

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchsupport import free_port, start_redis  # noqa: E402

SMS = {
    "contactId": "c-1",
    "workspaceId": "ws-1",
    "phoneNumber": "+14155550123",
    "message": "Hello from the benchmark",
    "metadata": {"campaignId": "camp-1"},
}


def environ(method: str, path: str, body: bytes = b"", headers=None) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:3000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body:
        env["CONTENT_TYPE"] = "application/json"
        env["CONTENT_LENGTH"] = str(len(body))
    env.update(headers or {})
    return env


def call(app, env) -> tuple[str, bytes]:
    status = []
    result = app(env, lambda s, h, exc_info=None: status.append(s))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return status[0], body


_batch_runs = itertools.count()


def requests_for(scenario: str, n: int, job_ids: list[str]):
    if scenario == "sms":
        body = json.dumps(SMS).encode()
        return [environ("POST", "/api/schedule-sms", body) for _ in range(n)]
    if scenario == "sms-key":
        body = json.dumps(SMS).encode()
        return [
            environ(
                "POST",
                "/api/schedule-sms",
                body,
                {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex},
            )
            for _ in range(n)
        ]
    if scenario == "status":
        return [
            environ("GET", f"/api/job-status/{job_ids[i % len(job_ids)]}")
            for i in range(n)
        ]
    if scenario == "batch":
        # bench/batch.py's batches (keys, emails, delays): each its own contacts,
        # so that every key is new (a replayed key costs a look-up, not an insert).
        from batch import batch_body

        run = next(_batch_runs)
        return [
            environ("POST", "/api/schedule-batch", batch_body(1000, run, i))
            for i in range(n)
        ]
    raise SystemExit(f"unknown scenario {scenario}")


def measure(app, scenario, n, job_ids, profile=None) -> float:
    envs = requests_for(scenario, n, job_ids)
    if profile is not None:
        profile.enable()
    start = time.process_time()
    for env in envs:
        status, body = call(app, env)
        if not status.startswith("200"):
            raise SystemExit(f"{scenario}: {status} {body[:300]!r}")
    elapsed = time.process_time() - start
    if profile is not None:
        profile.disable()
    return elapsed / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenarios", default="sms,sms-key,status,batch")
    parser.add_argument("--profile", help="cProfile this scenario instead")
    args = parser.parse_args()

    port = free_port()
    redis = start_redis(port, "--bind", "127.0.0.1")
    os.environ.update(
        VAR_DIR=tempfile.mkdtemp(prefix="qs-cpu-"),
        DEBUG="false",
        SECRET_KEY="bench",
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    try:
        run(args)
    finally:
        redis.terminate()


def run(args) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from config.wsgi import application

    # Jobs for the status scenario, and a warm-up of every path.
    job_ids = []
    for env in requests_for("sms", 200, []):
        job_ids.append(json.loads(call(application, env)[1])["jobId"])
    for scenario in args.scenarios.split(","):
        n = 5 if scenario == "batch" else 200
        measure(application, scenario, n, job_ids)
    if args.profile:
        profile = cProfile.Profile(time.process_time)  # CPU, not waits
        n = max(args.n // 200, 5) if args.profile == "batch" else args.n
        measure(application, args.profile, n, job_ids, profile)
        if os.environ.get("PROFILE_OUT"):
            profile.dump_stats(os.environ["PROFILE_OUT"])
        stats = pstats.Stats(profile).sort_stats(os.environ.get("SORT", "cumulative"))
        stats.print_stats(45)
        if os.environ.get("CALLEES"):
            stats.print_callees(*os.environ["CALLEES"].split(","))
        return
    for scenario in args.scenarios.split(","):
        n = max(args.n // 200, 5) if scenario == "batch" else args.n
        samples = [
            measure(application, scenario, n, job_ids) for _ in range(args.rounds)
        ]
        print(
            f"{scenario:8} ms/request median {statistics.median(samples):.3f} "
            f"(rounds: {', '.join(f'{s:.3f}' for s in samples)}; n={n})"
        )


if __name__ == "__main__":
    main()
