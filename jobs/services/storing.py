"""Writing new jobs: their rows, then their RQ jobs (jobs.broker)."""

from django.db import OperationalError, router, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from jobs import broker
from jobs.models import Job
from jobs.rows import insert_rows
from jobs.services.errors import QueueUnavailable
from jobs.writelock import write_turn


def placement(job: Job) -> broker.Placement:
    """Where the job's RQ job goes: its queue, now or at its scheduled time."""
    due = job.scheduled_for.timestamp() if job.status == Job.Status.DELAYED else None
    return broker.Placement(str(job.id), job.queue, due, job.workspace_id)


def placed(job: Job) -> broker.Placed:
    return broker.Placed(str(job.id), job.queue)


def place_jobs(jobs: list[Job]) -> None:
    """Hand the jobs that are waiting or delayed to Redis, in one call. A job held
    by a pause has nothing in Redis: resume places it."""
    broker.place(
        [
            placement(job)
            for job in jobs
            if job.status in (Job.Status.WAITING, Job.Status.DELAYED)
        ]
    )


def insert_jobs(jobs: list[Job]) -> None:
    """Insert the jobs' rows in one executemany (jobs.rows), in a
    transaction of its own: SQLite's write lock is held for that one statement,
    taken in turn with the other writers (jobs.writelock)."""
    alias = router.db_for_write(Job)
    created_at = timezone.now()
    for job in jobs:
        job.created_at = created_at  # auto_now_add, which bulk_create would set
    # durable: refuse to run inside an outer transaction that could still roll back.
    with write_turn(alias), transaction.atomic(using=alias, durable=True):
        insert_rows(Job, jobs, using=alias)


def store_and_place(jobs: list[Job]) -> None:
    """Insert the new jobs' rows, then hand them to Redis in one call.

    Rows first, so a worker never meets a job without its row. If Redis refuses,
    the rows are deleted: none of the jobs is scheduled (QueueUnavailable). An
    IntegrityError (an idempotency key taken meanwhile) leaves nothing behind.
    """
    try:
        insert_jobs(jobs)
    except OperationalError as exc:
        # SQLite's write lock still taken after its busy timeout: nothing written.
        raise QueueUnavailable(f"database busy: {exc}") from exc
    try:
        place_jobs(jobs)
    except RedisError as exc:
        Job.objects.filter(pk__in=[job.pk for job in jobs]).delete()
        raise QueueUnavailable(str(exc)) from exc
