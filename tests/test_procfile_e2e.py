"""The service as users run it: the Procfile's processes, driven over HTTP."""

import subprocess

import pytest
import requests

from tests.conftest import wait_for_schedulers, wait_for_workers
from tests.support import ROOT, answers, free_port, procfile, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


def test_procfile_serves_the_seed_curl_examples(start_process, service_env, backend):
    commands = procfile()
    assert set(commands) == {"release", "web", "worker", "scheduler"}
    port = free_port()
    env = {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DEBUG": "false",
        "SECRET_KEY": "e2e",
    }
    subprocess.run(
        ["bash", "-c", commands["release"]],
        cwd=ROOT, env={**service_env_with_path(service_env), **env}, check=True,
    )  # fmt: skip
    start_process("web", commands["web"], **env)
    start_process("worker", commands["worker"], **env)
    start_process("scheduler", commands["scheduler"], **env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/health"), timeout=30, message="web to answer")
    wait_for_workers(1)
    wait_for_schedulers(1)

    sms = {
        "phoneNumber": "+1234567890",
        "message": "This is a test SMS",
        "contactId": "123456",
        "workspaceId": "66338",
        "delay": 0,
    }
    now = requests.post(f"{base}/api/schedule-sms", json=sms, timeout=5).json()
    later = requests.post(
        f"{base}/api/schedule-email",
        json={
            "to": "test@example.com",
            "subject": "Scheduled Test Email",
            "html": "<p>This is a scheduled test email</p>",
            "contactId": "123456",
            "workspaceId": "66338",
            "delay": 1500,
        },
        timeout=5,
    ).json()
    assert now["success"] and later["success"]

    [sms_call] = wait_for(lambda: backend.for_job(now["jobId"]), timeout=10)
    [email_call] = wait_for(lambda: backend.for_job(later["jobId"]), timeout=10)
    assert sms_call.path == "/send-sms" and sms_call.body["message"] == sms["message"]
    assert email_call.path == "/api/email/send"
    # The worker records the outcome just after the backend answers.
    url = f"{base}/api/job-status/{later['jobId']}"
    status = wait_for(
        lambda: (
            (s := requests.get(url, timeout=5).json())["status"] == "completed" and s
        ),
        timeout=10,
    )
    assert status["type"] == "email"
    bad = requests.post(
        f"{base}/api/schedule-sms",
        data="{",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert bad.status_code == 400 and bad.json()["success"] is False


def service_env_with_path(env: dict) -> dict:
    import os
    import sys
    from pathlib import Path

    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **env, "PATH": path}
