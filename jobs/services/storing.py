"""Writing new jobs: their rows, then their RQ jobs (jobs.broker)."""

from functools import lru_cache

from django.db import OperationalError, connections, router, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from jobs import broker
from jobs.models import Job
from jobs.services.errors import QueueUnavailable


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
    """Job.objects.bulk_create, with every value converted before the transaction.

    Django's bulk_create compiles the SQL value by value inside the transaction,
    most of a batch's time; SQLite's one write lock would be held all along, and
    concurrent batches time out on it. Here the lock covers one executemany.
    """
    connection = connections[router.db_for_write(Job)]
    fields = Job._meta.concrete_fields
    created_at = timezone.now()
    rows = []
    for job in jobs:
        job.created_at = created_at  # auto_now_add, which bulk_create would set
        rows.append(
            [f.get_db_prep_save(getattr(job, f.attname), connection) for f in fields]
        )
    sql = _insert_sql(connection.alias)
    # durable: refuse to run inside an outer transaction that could still roll back.
    with transaction.atomic(using=connection.alias, durable=True):
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    for job in jobs:
        job._state.adding, job._state.db = False, connection.alias


@lru_cache(maxsize=4)
def _insert_sql(alias: str) -> str:
    # The same for every insert of the process: quoting 30 names each time was a
    # tenth of insert_jobs (cProfile).
    quote = connections[alias].ops.quote_name
    fields = Job._meta.concrete_fields
    return "INSERT INTO {} ({}) VALUES ({})".format(
        quote(Job._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )


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
