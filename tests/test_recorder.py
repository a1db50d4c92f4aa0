"""jobs.processes.recorder: outcomes recorded on a thread of their own, in order,
with what goes wrong there raised on the engine's thread."""

import pytest
from django.utils import timezone

from jobs import broker, services
from jobs.delivery import Outcome
from jobs.models import Job
from jobs.processes.recorder import Recorder
from tests.support import SMS, post

pytestmark = pytest.mark.django_db(transaction=True)


def started(client, count: int) -> list[services.Finished]:
    """`count` SMS jobs claimed and started by worker-r, each with a 200 outcome."""
    ids = [post(client, "/api/schedule-sms", SMS).json()["jobId"] for _ in range(count)]
    claimed = broker.claim("worker-r", ["send-sms-queue"], limit=count).deliveries
    assert sorted(c.job_id for c in claimed) == sorted(ids)
    jobs, skipped = services.start_claimed(claimed, worker="worker-r")
    assert not skipped
    ok = Outcome(True, 200, "", timezone.now(), 3)
    return [services.Finished(c, job, ok, job.scheduled_for) for c, job in jobs]


def test_batches_are_recorded_on_the_thread_one_after_the_other(client):
    first, second = started(client, 3), started(client, 2)
    recorder = Recorder("worker-r")
    recorder.record(first, [])
    recorder.record(second, [])  # waits for the first
    recorder.close()
    assert not recorder._thread.is_alive()
    ids = [str(f.job.id) for f in first + second]
    assert Job.objects.filter(pk__in=ids, status="completed").count() == 5
    assert Job.objects.get(pk=ids[0]).attempt_log.get().http_status == 200


def test_an_error_while_recording_is_raised_where_the_engine_waits(client):
    recorder = Recorder("worker-r")
    recorder.record([object()], [])  # not a Finished: record_outcomes fails
    with pytest.raises(AttributeError):
        recorder.wait()
    # Raised once; the recorder goes on with the next batch.
    finished = started(client, 1)
    recorder.record(finished, [])
    recorder.close()
    assert Job.objects.get(pk=finished[0].job.id).status == "completed"
