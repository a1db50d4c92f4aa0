"""A short soak: thousands of jobs while workers keep dying and Redis restarts once."""

import os
import random
import signal
import threading
import time
from collections import Counter

import pytest

from jobs.models import Job
from tests.faults.conftest import WORKER, record
from tests.support import SMS, post, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]
JOBS = int(os.environ.get("SOAK_JOBS", "5000"))


def test_soak_every_acknowledged_job_is_delivered(
    client, backend, own_redis, services_on, start_process
):
    env = {"REDIS_URL": own_redis.url, "JOB_STALL_TIMEOUT_MS": "15000"}
    processes = services_on(workers=2, **env)
    workers = [processes["worker-0"], processes["worker-1"]]
    rng = random.Random(11)
    acknowledged: list[str] = []
    chaos_done = threading.Event()

    def chaos():
        # Kill a worker every 3 s (and start a new one); restart Redis once.
        for round_ in range(8):
            time.sleep(3)
            victim = workers.pop(0)
            victim.signal(signal.SIGKILL)
            workers.append(start_process(f"worker-soak-{round_}", WORKER, **env))
            if round_ == 2:
                own_redis.stop()
                time.sleep(1)
                own_redis.start()
        chaos_done.set()

    threading.Thread(target=chaos, daemon=True).start()
    started = time.time()
    for _ in range(JOBS):
        response = post(
            client, "/api/schedule-sms", {**SMS, "delay": rng.randint(0, 15000)}
        )
        if response.status_code == 200:
            acknowledged.append(response.json()["jobId"])
        else:
            assert response.status_code == 503  # Redis restarting: refused, not lost
    chaos_done.wait(60)

    def all_done():
        return Job.objects.filter(status="completed").count() >= len(acknowledged)

    wait_for(all_done, timeout=300, interval=1)
    time.sleep(2)
    record(f"soak: {len(acknowledged)} jobs all delivered after", time.time() - started)

    # A worker killed while sending leaves a truncated request, not a delivery.
    delivered = Counter(
        c.body["jobId"] for c in backend.to("/send-sms") if "jobId" in c.body
    )
    assert set(delivered) == set(acknowledged)
    assert Job.objects.count() == len(acknowledged)  # refused requests left nothing
    twice = [job_id for job_id, n in delivered.items() if n > 1]
    for job_id in twice:
        attempts = Job.objects.get(pk=job_id).attempt_log
        assert attempts.filter(error__startswith="attempt lost").exists(), job_id
    print(f"acknowledged {len(acknowledged)}, delivered twice {len(twice)}")
