"""One line per log event in every process, as text or (LOG_FORMAT=json) JSON."""

import io
import json
import logging
import re

import pytest

from config.logfilters import RedactSecrets
from config.logformat import JsonFormatter
from tests.conftest import wait_for_schedulers, wait_for_workers
from tests.support import ROOT, free_port, procfile, wait_for

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ "
)
WEB = "exec python -m config.serve"


def run_the_processes(start_process, **env) -> list[str]:
    port = str(free_port())
    started = [
        start_process("web", WEB, PORT=port, HOST="127.0.0.1", **env),
        start_process("worker", procfile()["worker"], **env),
        start_process("scheduler", procfile()["scheduler"], **env),
    ]
    wait_for_workers(1)
    wait_for_schedulers(1)
    wait_for(lambda: "Started worker" in started[0].output(), message="granian")
    for process in started:
        process.stop()
    return [line for p in started for line in p.output().splitlines() if line.strip()]


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_text_logs_have_one_line_per_event(start_process):
    lines = run_the_processes(start_process)
    assert [line for line in lines if not TEXT_LINE.match(line)] == []
    # rq-scheduler and RQ used to add a handler of their own: each event twice.
    assert sum("Registering birth" in line for line in lines) == 1, lines
    assert sum("Listening on" in line for line in lines) == 1, lines
    assert sum("Starting granian" in line for line in lines) == 1, lines


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_json_logs_are_one_object_per_line(start_process):
    lines = run_the_processes(start_process, LOG_FORMAT="json")
    events = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(event) for event in events)
    loggers = {event["logger"] for event in events}
    assert {"rq.worker", "rq_scheduler.scheduler", "_granian"} <= loggers
    messages = [event["message"] for event in events]
    assert sum("Registering birth" in m for m in messages) == 1


def test_json_lines_keep_secrets_out_and_tracebacks_on_one_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("refused Authorization: Bearer qs_0123abcd_s3cretvalue")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert "s3cretvalue" not in first and "[redacted]" in json.loads(first)["message"]
    assert "ValueError: boom" in json.loads(second)["exc_info"]


def test_log_format_must_be_text_or_json():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True,
        text=True, env={"PATH": "/usr/bin:/bin", "LOG_FORMAT": "yaml"},
    )  # fmt: skip
    assert run.returncode == 1
    assert "LOG_FORMAT must be one of text, json" in run.stderr
