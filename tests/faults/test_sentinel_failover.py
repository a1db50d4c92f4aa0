"""Redis Sentinel: the primary SIGKILLed (or demoted by SENTINEL FAILOVER) while
the API is scheduling, a replica promoted by three sentinels, and every process
(web, worker, scheduler) following it without a restart."""

import random
import signal
import threading
import time
from collections import Counter

import pytest
import requests
from rq import Worker

from jobs.models import Job
from jobs.processes.scheduler import PreciseScheduler
from tests.faults.conftest import FAULT_ENV, record
from tests.support import (
    SMS,
    RedisServer,
    SentinelServer,
    answers,
    free_port,
    procfile,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]
BEFORE_KILL, AFTER_KILL, AFTER_PROMOTION = 120, 240, 40
REFUSED = "The queue is unavailable right now; nothing was scheduled. Retry shortly."


@pytest.fixture
def sentinel_group():
    """A primary (append-only), one replica and three sentinels, quorum 2."""
    primary = RedisServer(appendonly=True)
    primary.start()
    replica = RedisServer(appendonly=True, replica_of=primary.port)
    replica.start()
    sentinels = [SentinelServer(primary.port) for _ in range(3)]
    servers = [primary, replica, *sentinels]
    for sentinel in sentinels:
        sentinel.start()

    def ready():
        link = replica.client().info("replication").get("master_link_status")
        states = [s.client().sentinel_master("mymaster") for s in sentinels]
        return link == "up" and all(
            state["num-other-sentinels"] >= 2 and state["num-slaves"] >= 1
            for state in states
        )

    wait_for(ready, timeout=30, interval=0.1, message="sentinels to see everyone")
    yield primary, replica, sentinels
    for server in servers:
        server.stop()


@pytest.mark.parametrize("fault", ["kill", "demote"])
def test_a_sentinel_failover_loses_no_acknowledged_job(
    sentinel_group, start_process, backend, fault
):
    # sentinel_group first: the processes stop before Redis does.
    primary, replica, sentinels = sentinel_group
    port = free_port()
    env = {
        **FAULT_ENV,
        "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in sentinels),
        "REDIS_SENTINEL_MASTER": "mymaster",
        # Nothing answers here: every process must find Redis through Sentinel.
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PORT": str(port), "HOST": "127.0.0.1", "DEBUG": "false",
        "SECRET_KEY": "sentinel", "WEB_CONCURRENCY": "1",
    }  # fmt: skip
    commands = procfile()
    started = {
        name: start_process(name, commands[name], **env)
        for name in ("web", "worker", "scheduler")
    }
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/health"), timeout=30, message="web to answer")
    on_primary = primary.client()
    prefix = PreciseScheduler.redis_scheduler_namespace_prefix
    wait_for(lambda: Worker.all(connection=on_primary), timeout=20, message="worker")
    wait_for(lambda: on_primary.keys(prefix + "*"), timeout=20, message="scheduler")

    promoted = {}
    threading.Thread(
        target=watch_promotion, args=(sentinels, replica.port, promoted), daemon=True
    ).start()
    rng = random.Random(14)
    sent: list[dict] = []
    deadline = time.monotonic() + 40
    # Until AFTER_KILL requests after the kill, and AFTER_PROMOTION after the
    # replica's promotion: the client keeps asking through the whole switch.
    while len(sent) < BEFORE_KILL + AFTER_KILL or (
        len([s for s in sent if s["at"] > promoted.get("at", 1e12)]) < AFTER_PROMOTION
    ):
        assert time.monotonic() < deadline, "no sentinel promoted the replica"
        if len(sent) == BEFORE_KILL:
            killed = time.time()
            if fault == "kill":
                primary.process.send_signal(signal.SIGKILL)
            else:
                # The old primary lives on, answering READONLY once demoted.
                sentinels[0].client().execute_command(
                    "SENTINEL", "FAILOVER", "mymaster"
                )
        # Immediate jobs, and delayed ones due after the failover.
        delay = 0 if len(sent) % 2 else rng.randint(1000, 6000)
        sent.append(schedule(base, f"c-{len(sent)}", delay))

    acked = {s["contact"]: s["jobId"] for s in sent if s["status"] == 200}
    refused = [s for s in sent if s["status"] != 200]
    # A dead primary refuses until the promotion; a demoted one hands over.
    assert refused or fault == "demote", "no request met the failover"
    for answer in refused:
        # The service's error shape, never a 500 or a hang.
        assert answer["status"] == 503, answer
        assert answer["body"] == {"success": False, "error": REFUSED, "details": {}}

    def all_delivered():
        got = {c.body["contactId"] for c in backend.to("/send-sms")}
        return set(acked) <= got

    wait_for(all_delivered, timeout=40, interval=0.2, message="every acknowledged job")
    time.sleep(2)  # anything refused, or sent twice, would arrive by now
    calls = backend.to("/send-sms")
    delivered = Counter(c.body["contactId"] for c in calls)
    assert set(delivered) == set(acked), "a refused request was delivered"
    assert Job.objects.count() == len(acked)  # refused requests left no row
    due = {str(j.id): j.due_at.timestamp() for j in Job.objects.all()}
    early = [c.body["jobId"] for c in calls if c.at < due[c.body["jobId"]]]
    assert early == []
    assert {c.body["jobId"] for c in calls} == set(acked.values())

    # The watchdog compared every pending job with the new primary.
    scheduler_log = started["scheduler"].output()
    assert replica.client().info("server")["run_id"] in scheduler_log
    # The web process follows it too, for /health, /metrics and the dashboard.
    auth = ("admin", "admin123")
    assert requests.get(f"{base}/health", timeout=5).json()["redis"] == "ok"
    metrics = requests.get(f"{base}/metrics", auth=auth, timeout=5).text
    assert "queueservices_redis_up 1.0" in metrics
    assert requests.get(f"{base}/admin/queues", auth=auth, timeout=5).ok

    failover = promoted["at"] - killed
    window = refused[-1]["at"] - refused[0]["at"] if refused else 0.0
    twice = sum(1 for n in delivered.values() if n > 1)
    after = {s["jobId"] for s in sent if s["at"] > promoted["at"]} - {None}
    lateness = {c.body["jobId"]: c.at - due[c.body["jobId"]] for c in calls}
    name = f"sentinel failover ({fault})"
    record(f"{name}: primary {fault} to replica promoted", failover)
    record(f"{name}: refusal window (first to last 503)", window)
    record(f"{name}: max lateness", max(lateness.values()))
    record(
        f"{name}: max lateness, jobs scheduled after the promotion",
        max(lateness[job_id] for job_id in after),
    )
    print(
        f"sent {len(sent)}, acknowledged {len(acked)}, delivered {len(delivered)}, "
        f"refused {len(refused)}, delivered twice {twice}, re-queued by the "
        f"watchdog {scheduler_log.count('was missing from Redis')}"
    )


def schedule(base: str, contact: str, delay: int) -> dict:
    body = {**SMS, "contactId": contact, "delay": delay}
    at = time.time()
    # A timeout: a request that hangs through the failover fails the test.
    response = requests.post(f"{base}/api/schedule-sms", json=body, timeout=10)
    answer = response.json()
    return {
        "contact": contact, "at": at, "status": response.status_code,
        "body": answer, "jobId": answer.get("jobId"),
    }  # fmt: skip


def watch_promotion(sentinels, replica_port: int, promoted: dict) -> None:
    """Note when the first sentinel names the replica as the primary."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(s.primary_port() == replica_port for s in sentinels):
            promoted["at"] = time.time()
            return
        time.sleep(0.01)
