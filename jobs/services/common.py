"""Pieces the services share: errors, retry timing, handing a job to RQ, audit."""

from collections import defaultdict

from django.conf import settings
from django.db import OperationalError, connections, router, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Retry

from jobs.models import AuditEntry, Job
from jobs.queues import fetch_rq_job, get_queue, get_scheduler, redis_connection
from jobs.rq import copy_rq_job
from jobs.scheduler import schedule_job_ids

PENDING = [Job.Status.WAITING, Job.Status.DELAYED, Job.Status.ACTIVE]


class QueueUnavailable(Exception):
    """Redis could not be reached; nothing was scheduled."""


class IllegalTransition(Exception):
    """The job is not in a state that allows the requested action."""


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based): base x 2^(n-1)."""
    return settings.JOB_BACKOFF_MS * 2 ** (attempt - 1) / 1000


def retry_wait_seconds(attempt: int, retry_after_s: float | None = None) -> float:
    """The backoff, or longer when the backend asked for it (Retry-After)."""
    return max(backoff_seconds(attempt), retry_after_s or 0.0)


def rq_job_timeout() -> int:
    # One callback, with room to record it; RQ kills an attempt that hangs longer.
    return int(settings.CALLBACK_TIMEOUT_MS / 1000) + 30


def enqueue_delivery(job: Job, *, delayed: bool) -> None:
    """Create the job's RQ job (same id) with the attempts it has left.

    The task takes no arguments: the RQ job's id is the Job's. That keeps every
    field of the RQ hash under Redis's 64-byte listpack limit, a third of the
    memory of a delayed job (bench/redis_memory.py).
    """
    options = {
        "job_id": str(job.id),
        "timeout": rq_job_timeout(),
        "retry": _retry_policy(done=job.attempts, total=job.max_attempts),
    }
    if delayed:
        get_scheduler().enqueue_at(
            job.scheduled_for,
            "jobs.tasks.deliver",
            queue_name=job.queue,
            **options,
        )
    else:
        queue = get_queue(job.queue)
        rq_job = queue.create_job(
            "jobs.tasks.deliver",
            job_id=str(job.id),
            timeout=options["timeout"],
            retry=options["retry"],
            result_ttl=settings.RQ.get("DEFAULT_RESULT_TTL"),
        )
        # One round trip: the job hash, its place on the queue, the queue's name.
        with queue.connection.pipeline() as pipe:
            queue.enqueue_job(rq_job, pipeline=pipe)
            pipe.execute()


def enqueue_deliveries(jobs: list[Job]) -> None:
    """enqueue_delivery for many new jobs (delayed when their status says so), in
    one Redis transaction: the same RQ hashes, queue lists and scheduled-set entries
    as one call each, and the scheduler woken at most once.

    A delivery job's RQ hash holds nothing of its own but the id (the task takes no
    arguments), so RQ writes the first job of each kind and the others are copies
    made in Redis: one short command per job instead of five long ones.
    """
    kinds = defaultdict(list)
    for job in jobs:
        kinds[job.queue, job.status, job.attempts, job.max_attempts].append(job)
    dues = {
        str(job.id): job.scheduled_for.timestamp()
        for job in jobs
        if job.status == Job.Status.DELAYED
    }
    with redis_connection().pipeline() as pipe:
        # MULTI first: Queue.enqueue_job starts it on a pipeline that has none yet,
        # which redis-py refuses once other commands are queued.
        pipe.multi()
        for (queue_name, status, _, _), members in kinds.items():
            first, others = members[0], [str(job.id) for job in members[1:]]
            rq_job = _stage_rq_job(pipe, first, status)
            copy_rq_job(pipe, rq_job.to_dict(), others)
            if others and status == Job.Status.WAITING:
                pipe.rpush(get_queue(queue_name).key, *others)
        schedule_job_ids(pipe, dues)
        pipe.execute()


def _stage_rq_job(pipe, job: Job, status: str):
    """What enqueue_delivery writes for `job`, on `pipe`. A job held by a paused
    campaign or workspace gets its RQ hash only, in no queue and no schedule, as
    jobs_pause leaves a paused job: resume places it (jobs.services.control)."""
    options = {
        "job_id": str(job.id),
        "timeout": rq_job_timeout(),
        "retry": _retry_policy(done=job.attempts, total=job.max_attempts),
    }
    if status in (Job.Status.DELAYED, Job.Status.PAUSED):
        rq_job = get_scheduler().build_job(
            "jobs.tasks.deliver", queue_name=job.queue, **options
        )
        rq_job.save(pipeline=pipe)
        return rq_job
    queue = get_queue(job.queue)
    rq_job = queue.create_job(
        "jobs.tasks.deliver",
        result_ttl=settings.RQ.get("DEFAULT_RESULT_TTL"),
        **options,
    )
    queue.enqueue_job(rq_job, pipeline=pipe)
    return rq_job


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
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(Job._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    # durable: refuse to run inside an outer transaction that could still roll back.
    with transaction.atomic(using=connection.alias, durable=True):
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    for job in jobs:
        job._state.adding, job._state.db = False, connection.alias


def store_and_enqueue(jobs: list[Job]) -> None:
    """Insert the new jobs' rows, then hand them to Redis in one transaction.

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
        enqueue_deliveries(jobs)
    except RedisError as exc:
        Job.objects.filter(pk__in=[job.pk for job in jobs]).delete()
        raise QueueUnavailable(str(exc)) from exc


def _retry_policy(*, done: int, total: int) -> Retry | None:
    """RQ retries for attempts done+1..total; the wait after attempt n is backoff(n)."""
    if total - done < 2:
        return None
    return Retry(
        max=total - done - 1,
        interval=[backoff_seconds(n) for n in range(done + 1, total)],
    )


def delete_rq_job(job: Job) -> None:
    """Remove the job's RQ job from Redis: its hash, queue and registries."""
    rq_job = fetch_rq_job(str(job.id))
    if rq_job is not None:
        rq_job.delete()


def audit(actor: str, action: str, *, job: Job | None = None, **fields) -> None:
    AuditEntry.objects.create(actor=actor, action=action, job=job, **fields)
