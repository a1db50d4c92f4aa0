"""Redis unreachable: the API answers 503 fast, records nothing, sends nothing later."""

import time

import pytest
from django.test.utils import override_settings

from jobs.models import Job
from tests.support import SMS, RedisServer, free_port, post, queues_on

pytestmark = pytest.mark.django_db(transaction=True)


def test_schedule_answers_503_within_5_seconds_when_redis_is_unreachable(
    client, settings
):
    with override_settings(RQ_QUEUES=queues_on(free_port(), settings)):
        started = time.monotonic()
        response = post(client, "/api/schedule-sms", SMS)
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["success"] is False
    assert response["Retry-After"]
    assert elapsed < 5
    assert Job.objects.count() == 0


def test_request_refused_while_redis_was_down_is_never_delivered(
    client, backend, work, settings
):
    # Append-only, so the job acknowledged before the outage survives the restart.
    server = RedisServer(appendonly=True)
    server.start()
    try:
        with override_settings(RQ_QUEUES=queues_on(server.port, settings)):
            before = post(client, "/api/schedule-sms", SMS).json()["jobId"]
            server.stop()
            assert post(client, "/api/schedule-sms", SMS).status_code == 503
            assert client.get("/health").status_code == 503
            server.start()
            after = post(client, "/api/schedule-sms", SMS).json()["jobId"]
            work(until=lambda: len(backend.to("/send-sms")) >= 2)
            time.sleep(0.3)
            work(until=lambda: True)
    finally:
        server.stop()

    assert sorted(c.body["jobId"] for c in backend.to("/send-sms")) == sorted(
        [before, after]
    )
    assert Job.objects.count() == 2
