"""GroupCommit: concurrent submissions flushed together, each exactly once."""

import threading

import pytest
from django.db import connection

from jobs.models import Job
from jobs.services import job_schedule
from jobs.services.groupcommit import GroupCommit
from tests.support import SMS, queued_ids


def run_threads(target, count: int) -> list:
    errors = []

    def wrapped(i):
        try:
            target(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            errors.append((i, exc))

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return errors


def test_a_lone_item_is_flushed_at_once_by_its_own_thread():
    seen = []
    commit = GroupCommit(lambda items: seen.append((threading.get_ident(), items)))
    commit.submit("a")
    assert seen == [(threading.get_ident(), ["a"])]


def test_items_arriving_during_a_flush_go_together_in_the_next_one():
    first_started, release = threading.Event(), threading.Event()
    batches = []

    def flush(items):
        batches.append(list(items))
        if len(batches) == 1:
            first_started.set()
            release.wait(5)

    commit = GroupCommit(flush)
    leader = threading.Thread(target=commit.submit, args=("first",))
    leader.start()
    assert first_started.wait(5)
    submitted = threading.Barrier(21)

    def submit(i):
        submitted.wait(5)
        commit.submit(i)

    others = threading.Thread(target=lambda: run_threads(submit, 20))
    others.start()
    submitted.wait(5)
    # Give the 20 threads time to queue behind the running flush, then let it end.
    while len(commit._waiting) < 20:
        threading.Event().wait(0.01)
    release.set()
    leader.join(5)
    others.join(10)
    assert batches[0] == ["first"]
    assert sorted(batches[1]) == list(range(20))
    assert len(batches) == 2


def test_every_item_is_flushed_exactly_once_under_contention():
    flushed = []
    lock = threading.Lock()

    def flush(items):
        with lock:
            flushed.extend(items)

    commit = GroupCommit(flush, max_batch=7)
    assert run_threads(commit.submit, 300) == []
    assert sorted(flushed) == list(range(300))


def test_a_failed_flush_fails_the_items_of_that_batch_only():
    first_started, release = threading.Event(), threading.Event()
    calls = []

    def flush(items):
        calls.append(list(items))
        if items == ["ok"]:
            first_started.set()
            release.wait(5)
            return
        raise ConnectionError("redis went away")

    commit = GroupCommit(flush)
    leader = threading.Thread(target=commit.submit, args=("ok",))
    leader.start()
    assert first_started.wait(5)
    results = {}

    def submit(i):
        try:
            commit.submit(i)
            results[i] = "ok"
        except ConnectionError as exc:
            results[i] = str(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    while len(commit._waiting) < 5:
        threading.Event().wait(0.01)
    release.set()
    for thread in [leader, *threads]:
        thread.join(5)
    assert results == {i: "redis went away" for i in range(5)}
    # The instance is usable again after a failure.
    calls.clear()
    with pytest.raises(ConnectionError):
        commit.submit("after")
    commit.submit("ok")
    assert calls == [["after"], ["ok"]]


@pytest.mark.django_db(transaction=True)
def test_concurrent_schedule_requests_are_each_written_and_delivered_once(
    backend, redis, work
):
    # Requests arriving during another's write share the next bulk write: check
    # that every one of them still gets its own row, RQ job and callback.
    start = threading.Barrier(30)
    ids = []

    def schedule(i):
        start.wait(5)
        try:
            job, _ = job_schedule(
                job_type="sms", payload={**SMS, "contactId": f"c{i}"}, delay_ms=0
            )
            ids.append(str(job.id))
        finally:
            connection.close()

    assert run_threads(schedule, 30) == []

    assert len(set(ids)) == 30
    assert set(map(str, Job.objects.values_list("id", flat=True))) == set(ids)
    assert sorted(queued_ids(redis, "send-sms-queue")) == sorted(ids)
    work(until=lambda: Job.objects.filter(status="completed").count() == 30)
    delivered = [request.body["jobId"] for request in backend.received]
    assert sorted(delivered) == sorted(ids)
    assert set(Job.objects.values_list("status", flat=True)) == {"completed"}
