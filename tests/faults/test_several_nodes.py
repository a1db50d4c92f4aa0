"""Two nodes, each its own web, worker and scheduler (the Procfile's commands), on one
PostgreSQL database and one Redis; one whole node SIGKILLed mid-campaign.

The database is a fresh one of this test's own on the PostgreSQL server (the one
DATABASE_URL names when it is PostgreSQL, else postgres@127.0.0.1:5432), created and
dropped here; the test is skipped when no PostgreSQL answers.
"""

import os
import queue
import random
import signal
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.faults.conftest import FAULT_ENV, record
from tests.support import (
    SMS,
    answers,
    descendants,
    free_port,
    procfile,
    wait_for,
)

pytestmark = pytest.mark.processes
JOBS = 300
# Each callback takes this long to answer, so a node dies with callbacks in flight.
BACKEND_ANSWERS_AFTER_S = 0.25


def postgres_server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


@pytest.fixture
def fresh_postgres():
    """A database of its own on the PostgreSQL server: (its URL, a connection)."""
    psycopg = pytest.importorskip("psycopg")
    server = postgres_server_url()
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {server}: {exc}")
    name = f"qs_nodes_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    db = psycopg.connect(url, autocommit=True)
    try:
        yield url, db
    finally:
        db.close()
        # FORCE: a process of a killed node may still hold a connection open.
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def start_node(start_process, name: str, env: dict) -> tuple[str, list]:
    """The Procfile's web, worker and scheduler; returns the web's URL and them."""
    commands = procfile()
    port = free_port()
    web_env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    processes = [
        start_process(f"{name}-web", commands["web"], **web_env),
        start_process(f"{name}-worker", commands["worker"], **env),
        start_process(f"{name}-scheduler", commands["scheduler"], **env),
    ]
    return f"http://127.0.0.1:{port}", processes


def kill_node(processes) -> None:
    """SIGKILL every process of a node at once: no graceful stop, nothing recorded."""
    pids = []
    for process in processes:
        pids += [process.process.pid, *descendants(process.process.pid)]
    for process in processes:
        process.signal(signal.SIGKILL)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def worker_names(client) -> dict[int, str]:
    """RQ's registered workers: pid -> name."""
    names = [n.decode() for n in client.smembers("rq:workers")]
    return {int(client.hget(n, "pid")): n.removeprefix("rq:worker:") for n in names}


class Campaign:
    """JOBS SMS, a third immediate, the rest 0.5-4 s later, posted through every
    node's web by a client thread each; a dead node's client stops."""

    def __init__(self, urls: list[str]):
        self.urls = urls
        rng = random.Random(14)
        self.bodies = queue.Queue()
        for n in range(JOBS):
            delay = 0 if n % 3 == 0 else rng.randint(500, 4000)
            body = {**SMS, "delay": delay, "metadata": {"campaignId": "nodes"}}
            self.bodies.put(body)
        self.acknowledged, self.unanswered, self.refused = [], [], []
        self.dead: set[str] = set()
        self.clients = [
            threading.Thread(target=self.schedule_through, args=(url,), daemon=True)
            for url in urls
        ]
        for client in self.clients:
            client.start()

    def schedule_through(self, url: str) -> None:
        with requests.Session() as http:
            while url not in self.dead:
                try:
                    body = self.bodies.get_nowait()
                except queue.Empty:
                    return
                try:
                    answer = http.post(f"{url}/api/schedule-sms", json=body, timeout=10)
                except requests.RequestException:
                    # The node died with the request: not acknowledged, not retried.
                    self.unanswered.append(body)
                    continue
                if answer.status_code == 200:
                    self.acknowledged.append(answer.json()["jobId"])
                else:
                    self.refused.append(answer.text)
                time.sleep(0.02)

    def join(self) -> None:
        for client in self.clients:
            client.join(60)


def test_a_node_killed_mid_campaign_loses_no_acknowledged_job(
    fresh_postgres, backend, own_redis, start_process
):
    # Fixtures in this order: the nodes stop before Redis and the database go, and
    # own_redis's settings are undone inside backend's (the other way round, the
    # tests after this one would look for Redis on own_redis's stopped port).
    database_url, db = fresh_postgres
    backend.default = BACKEND_ANSWERS_AFTER_S
    env = {
        **FAULT_ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": own_redis.url,
        "DEBUG": "false",
        "SECRET_KEY": "shared-by-both-nodes",
        "BULL_BOARD_PASSWORD": "shared-too",
        "JOB_STALL_TIMEOUT_MS": "10000",
    }
    # Both webs migrate the fresh database at once (jobs.migrationlock).
    (url_a, node_a), (url_b, _) = [start_node(start_process, n, env) for n in "ab"]
    for url in (url_a, url_b):
        wait_for(lambda u=url: answers(f"{u}/health"), timeout=60, message=url)
    client = own_redis.client()
    wait_for(lambda: len(worker_names(client)) == 2, timeout=30, message="workers")
    names = worker_names(client)
    # Two workers on one host, no --name: RQ gave each a name of its own.
    assert len(set(names.values())) == 2
    worker_a = names[node_a[1].process.pid]

    campaign = Campaign([url_a, url_b])
    wait_for(
        lambda: len(campaign.acknowledged) >= JOBS // 3
        and in_flight(db, worker_a), timeout=30, interval=0.01,
        message="callbacks in flight at node a",
    )  # fmt: skip
    campaign.dead.add(url_a)
    kill_node(node_a)
    killed_at = time.time()
    campaign.join()
    assert campaign.refused == []
    check_delivered_and_accounted_for(campaign, backend, db, url_b, killed_at)


def in_flight(db, worker: str) -> int:
    query = "SELECT count(*) FROM jobs_job WHERE status = 'active' AND worker = %s"
    return db.execute(query, [worker]).fetchone()[0]


def delivered(backend) -> Counter:
    # A worker killed while sending leaves a truncated request, not a delivery.
    return Counter(
        c.body["jobId"] for c in backend.to("/send-sms") if "jobId" in c.body
    )


def check_delivered_and_accounted_for(campaign, backend, db, url, killed_at) -> None:
    acknowledged = set(campaign.acknowledged)
    # The surviving node delivers the rest, and what the dead one had in hand.
    wait_for(
        lambda: acknowledged <= set(delivered(backend)), timeout=60, interval=0.2,
        message="every acknowledged job to be delivered",
    )  # fmt: skip
    done = "SELECT count(*) FROM jobs_job WHERE id = ANY(%s) AND status = 'completed'"
    ids = [uuid.UUID(job_id) for job_id in acknowledged]
    wait_for(lambda: db.execute(done, [ids]).fetchone()[0] == len(ids), timeout=30)
    record(
        "two nodes, one killed: all delivered, after the kill", time.time() - killed_at
    )

    calls = delivered(backend)
    twice = {job_id: n for job_id, n in calls.items() if n > 1}
    for job_id, n in twice.items():
        status = requests.get(f"{url}/api/job-status/{job_id}", timeout=10).json()
        errors = [attempt["error"] for attempt in status["deliveryAttempts"]]
        lost = [error for error in errors if error.startswith("attempt lost")]
        # Each extra delivery follows an attempt written off when its node died.
        assert len(lost) >= n - 1, status
    if twice:
        again = [backend.for_job(job_id, "/send-sms")[-1].at for job_id in twice]
        record(
            "two nodes, one killed: lost attempts redelivered", max(again) - killed_at
        )
    rows = {str(row[0]) for row in db.execute("SELECT id FROM jobs_job")}
    assert set(calls) <= rows  # nothing delivered that the database does not hold
    lost_attempts = db.execute(
        "SELECT count(*) FROM jobs_jobattempt WHERE error LIKE 'attempt lost%%'"
    ).fetchone()[0]
    assert lost_attempts >= 1  # the node died with callbacks in flight
    print(
        f"acknowledged {len(acknowledged)}, unanswered {len(campaign.unanswered)}, "
        f"rows {len(rows)}, delivered {len(calls)}, duplicates {len(twice)}, "
        f"lost attempts {lost_attempts}"
    )
