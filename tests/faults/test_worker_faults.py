"""Workers killed or stopped in the middle of a callback."""

import signal
import time

import pytest

from jobs.models import Job
from tests.conftest import wait_for_workers
from tests.faults.conftest import WORKER, record
from tests.support import SMS, post, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]


def test_worker_killed_mid_callback_is_redelivered_within_the_stall_timeout(
    client, backend, services_on, start_process
):
    stall_timeout_s = 15
    processes = services_on(JOB_STALL_TIMEOUT_MS=str(stall_timeout_s * 1000))
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = ["hang"]  # the first callback never gets its answer
    wait_for(lambda: backend.for_job(job_id), timeout=10)

    processes["worker-0"].signal(signal.SIGKILL)
    killed_at = time.time()
    start_process("worker-new", WORKER)

    wait_for(lambda: len(backend.for_job(job_id)) >= 2, timeout=stall_timeout_s + 5)
    recovery = backend.for_job(job_id)[1].at - killed_at
    record("worker SIGKILL mid-callback -> redelivered", recovery)
    assert recovery < stall_timeout_s
    wait_for(lambda: Job.objects.get(pk=job_id).status == "completed", timeout=10)
    job = Job.objects.get(pk=job_id)
    first, second = job.attempt_log.all()
    assert first.error.startswith("attempt lost: worker") and not first.succeeded
    assert second.succeeded and job.attempts == 2
    assert [c.headers["X-Queue-Attempt"] for c in backend.for_job(job_id)] == ["1", "2"]


def test_a_hung_attempt_is_retried_after_the_stall_timeout(
    client, backend, services_on, settings
):
    # The worker stays alive but its callback outlives JOB_STALL_TIMEOUT_MS.
    services_on(JOB_STALL_TIMEOUT_MS="2000", CALLBACK_TIMEOUT_MS="60000", workers=2)
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [6.0]

    wait_for(lambda: len(backend.for_job(job_id)) >= 2, timeout=15)
    calls = backend.for_job(job_id)
    record("hung attempt (stall timeout 2 s) -> retried", calls[1].at - calls[0].at)
    assert 2 <= calls[1].at - calls[0].at < 5
    wait_for(lambda: Job.objects.get(pk=job_id).status == "completed", timeout=15)


def test_sigterm_lets_the_callback_in_flight_finish(client, backend, services_on):
    processes = services_on()
    job_id = post(client, "/api/schedule-sms", SMS).json()["jobId"]
    backend.plan[job_id] = [2.0]  # the backend takes 2 s to answer
    wait_for(lambda: backend.for_job(job_id), timeout=10)

    worker = processes["worker-0"]
    worker.signal(signal.SIGTERM)
    worker.process.wait(15)

    job = Job.objects.get(pk=job_id)
    assert job.status == "completed"
    assert len(backend.for_job(job_id)) == 1
    assert "warm shut down requested" in worker.output()
    assert worker.process.returncode == 0


def test_nothing_is_lost_when_workers_keep_dying(
    client, backend, services_on, start_process
):
    processes = services_on(JOB_STALL_TIMEOUT_MS="10000")
    job_ids = [
        post(client, "/api/schedule-sms", {**SMS, "delay": i * 20}).json()["jobId"]
        for i in range(150)
    ]
    current = processes["worker-0"]
    for round_ in range(3):
        time.sleep(1.0)
        current.signal(signal.SIGKILL)
        current = start_process(f"worker-r{round_}", WORKER)
    wait_for_workers(1)

    wait_for(
        lambda: Job.objects.filter(status="completed").count() == len(job_ids),
        timeout=60,
    )
    # A worker killed while sending leaves a truncated request, not a delivery.
    delivered = [c.body["jobId"] for c in backend.to("/send-sms") if "jobId" in c.body]
    assert set(delivered) == set(job_ids)
    duplicates = {j for j in delivered if delivered.count(j) > 1}
    # A duplicate only where an attempt was cut off, and then it is on record.
    for job_id in duplicates:
        assert (
            Job.objects.get(pk=job_id)
            .attempt_log.filter(error__startswith="attempt lost")
            .exists()
        )
