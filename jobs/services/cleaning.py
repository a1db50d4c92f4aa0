"""Operator clean-ups: delete finished (or long-delayed) jobs, rows and Redis."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from jobs import broker
from jobs.models import Job
from jobs.services.audit import audit
from jobs.services.errors import IllegalTransition, QueueUnavailable

FINISHED = [Job.Status.COMPLETED, Job.Status.FAILED, Job.Status.CANCELLED]
# What "clean <status> older than N" counts from: when it finished, or (delayed,
# not finished yet) when it was made.
CLEANABLE = {
    Job.Status.COMPLETED: "finished_at",
    Job.Status.FAILED: "finished_at",
    Job.Status.DELAYED: "created_at",
}
CLEANABLE_STATUSES = list(CLEANABLE)
CHUNK = 500


def cleanable(*, queue: str, status: str, older_than: timedelta):
    """The jobs `jobs_clean` would delete (the dashboard counts them first)."""
    if status not in CLEANABLE:
        raise IllegalTransition(f"Cannot clean {status} jobs.")
    if older_than < timedelta(hours=1):
        raise IllegalTransition("Clean only jobs older than at least 1 hour.")
    cutoff = {f"{CLEANABLE[status]}__lt": timezone.now() - older_than}
    return Job.objects.filter(queue=queue, status=status, **cutoff)


def jobs_clean(*, queue: str, status: str, older_than: timedelta, actor: str) -> int:
    """Delete a queue's `status` jobs older than `older_than` (at least an hour):
    their rows, attempts and RQ jobs. Returns how many."""
    old = cleanable(queue=queue, status=status, older_than=older_than)
    count = 0
    while ids := list(old.values_list("id", flat=True)[:CHUNK]):
        count += _delete(old.filter(pk__in=ids), queue=queue)
    audit(
        actor, f"clean {status}", queue=queue, detail=f"{count} older than {older_than}"
    )
    return count


def job_remove(*, job_id, actor: str) -> None:
    """Delete a finished (completed, failed or cancelled) job and what Redis holds
    of it. A pending job is cancelled instead (job_cancel)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise IllegalTransition(f"There is no job {job_id}.")
    rows = Job.objects.filter(pk=job_id, status__in=FINISHED)
    if not _delete(rows, queue=job.queue):
        raise IllegalTransition(f"Cannot remove a job that is {job.status}.")
    audit(actor, "remove", queue=job.queue, detail=f"job {job_id} ({job.status})")


def _delete(rows, *, queue: str) -> int:
    """Delete the rows (the guard: a worker skips a job whose row is gone), then
    their RQ jobs. Returns how many rows went."""
    with transaction.atomic():
        ids = list(rows.values_list("id", flat=True))
        _, deleted = rows.filter(pk__in=ids).delete()
        # A row that changed meanwhile (a retry, say) stays, and so does its RQ job.
        kept = set(Job.objects.filter(pk__in=ids).values_list("id", flat=True))
    gone = [broker.Placed(str(pk), queue) for pk in ids if pk not in kept]
    try:
        broker.unplace(gone, delete=True)
    except RedisError as exc:
        # The rows are gone; what is left in Redis runs nothing (no row).
        raise QueueUnavailable(str(exc)) from exc
    return deleted.get(Job._meta.label, 0)
