"""A new Redis primary (promoted replica, restart, flush): the watchdog compares
every pending job with it at once, not only those overdue by WATCHDOG_GRACE_MS."""

from datetime import timedelta

import pytest
from django.test.utils import override_settings

from jobs import broker
from jobs.models import Job
from jobs.processes import watchdog
from tests.support import queues_on, schedule, scheduled_at, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def reconciled_now() -> None:
    broker.mark_reconciled(broker.unreconciled_primary())


def test_jobs_a_new_primary_lacks_are_put_back_at_once_for_their_due_time(
    client, redis, settings
):
    settings.WATCHDOG_GRACE_MS = 10000
    later = schedule(client, delay=3_600_000)
    now = schedule(client)
    reconciled_now()
    # What a promoted replica that missed the last writes looks like.
    redis.flushdb()
    # The grace rule alone waits: neither job is overdue by 10 s.
    assert watchdog.requeue_lost() == 0

    assert watchdog.reconcile_new_primary() == 2

    rows = {str(job.id): job for job in Job.objects.all()}
    assert scheduled_at(later) == pytest.approx(rows[later].due_at.timestamp())
    # Acknowledged less than the grace ago: a refused request's write could still
    # be failing, so it is not sent before the grace is up.
    young = rows[now].created_at + timedelta(milliseconds=10000)
    assert scheduled_at(now) == pytest.approx(young.timestamp())
    assert {rows[later].status, rows[now].status} == {Job.Status.DELAYED}
    assert watchdog.reconcile_new_primary() == 0


def test_a_new_primary_holding_every_job_gets_nothing_twice(client, redis):
    job_ids = [schedule(client, delay=delay) for delay in (0, 0, 60_000)]
    waiting = broker.get_queue("send-sms-queue").job_ids

    assert broker.unreconciled_primary() is not None
    assert watchdog.reconcile_new_primary() == 0

    assert broker.get_queue("send-sms-queue").job_ids == waiting
    assert scheduled_at(job_ids[2]) is not None
    assert broker.unreconciled_primary() is None


def test_a_promoted_replica_is_a_new_primary_restarted_redis_too(
    settings, primary_and_replica
):
    primary, replica = primary_and_replica
    with override_settings(RQ_QUEUES=queues_on(primary.port, settings)):
        reconciled_now()
        assert broker.unreconciled_primary() is None
    # The replica copied the mark, with its primary's run id.
    wait_for(lambda: replica.client().dbsize() > 0, message="replication")
    replica.client().replicaof("NO", "ONE")
    with override_settings(RQ_QUEUES=queues_on(replica.port, settings)):
        run_id = broker.unreconciled_primary()
        assert run_id == replica.client().info("server")["run_id"]
    with override_settings(RQ_QUEUES=queues_on(primary.port, settings)):
        primary.stop()
        primary.start()  # a new run id: what it holds is checked again
        assert broker.unreconciled_primary() is not None
