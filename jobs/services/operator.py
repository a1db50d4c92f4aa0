"""Operator actions from the dashboard, the admin and the API, each audited."""

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from jobs import broker
from jobs.models import Job
from jobs.queues import DELIVERY_QUEUES
from jobs.ratelimit import retry_times_within_rate
from jobs.services.audit import audit
from jobs.services.errors import IllegalTransition, QueueUnavailable
from jobs.services.storing import placed, placement

CANCELLABLE = [Job.Status.WAITING, Job.Status.DELAYED, Job.Status.PAUSED]


def _transition(job_id, *, allowed: list[str], to: str, action: str, **changes) -> Job:
    """Move a job from one of `allowed` to `to` in one guarded UPDATE, or refuse."""
    updated = Job.objects.filter(pk=job_id, status__in=allowed).update(
        status=to, **changes
    )
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise IllegalTransition(f"There is no job {job_id}.")
    if not updated:
        raise IllegalTransition(f"Cannot {action} a job that is {job.status}.")
    return job


def job_retry(*, job_id, actor: str) -> Job:
    """Run a failed job again now (or when its workspace's rate limit allows: "Retry
    all failed" on thousands of jobs must not burst), with a fresh set of attempts."""
    now = timezone.now()
    rows = Job.objects.filter(pk=job_id, status=Job.Status.FAILED)
    workspace_id = rows.values_list("workspace_id", flat=True).first()
    # An unknown or not-failed job reserves nothing; _transition refuses it below.
    at = now
    if workspace_id is not None:
        [at] = retry_times_within_rate([(workspace_id, now)])
    job = _transition(
        job_id,
        allowed=[Job.Status.FAILED],
        to=Job.Status.DELAYED if at > now else Job.Status.WAITING,
        action="retry",
        max_attempts=F("attempts") + settings.JOB_ATTEMPTS,
        scheduled_for=at,
        finished_at=None,
    )
    try:
        broker.requeue([placement(job)])
    except RedisError as exc:
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
        raise QueueUnavailable(str(exc)) from exc
    audit(actor, "retry", job=job)
    return job


def job_cancel(*, job_id, actor: str) -> Job:
    """Cancel a waiting, delayed or paused job: it will not be delivered."""
    job = _transition(
        job_id,
        allowed=CANCELLABLE,
        to=Job.Status.CANCELLED,
        action="cancel",
        finished_at=timezone.now(),
    )
    # The row is the guard (a worker skips cancelled jobs); Redis cleanup frees memory.
    try:
        broker.unplace([placed(job)], delete=True)
    except RedisError:
        pass
    audit(actor, "cancel", job=job)
    return job


def job_promote(*, job_id, actor: str) -> Job:
    """Run a delayed job now instead of at its due time."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status != Job.Status.DELAYED:
        raise IllegalTransition(f"Cannot promote a job that is {job and job.status}.")
    try:
        moved = broker.promote(str(job.id))
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    if not moved:
        raise IllegalTransition("The job is already on its way to a worker.")
    job = _transition(
        job_id,
        allowed=[Job.Status.DELAYED],
        to=Job.Status.WAITING,
        action="promote",
        scheduled_for=timezone.now(),
    )
    audit(actor, "promote", job=job)
    return job


def jobs_retry_failed(*, queue: str, actor: str) -> int:
    """Retry every failed job of a queue; returns how many."""
    failed = Job.objects.filter(queue=queue, status=Job.Status.FAILED)
    count = 0
    for job_id in failed.values_list("id", flat=True).iterator(chunk_size=500):
        job_retry(job_id=job_id, actor=actor)
        count += 1
    audit(actor, "retry all failed", queue=queue, detail=f"{count} job(s)")
    return count


def queue_pause(*, queue: str, actor: str) -> bool:
    """Pause a delivery queue: workers claim none of its jobs, which wait (due
    ones on the queue, later ones in the schedule) until queue_resume. Returns
    whether it was running."""
    _check_pausable(queue)
    try:
        changed = broker.pause_queue(queue)
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    if changed:
        audit(actor, "pause queue", queue=queue)
    return changed


def queue_resume(*, queue: str, actor: str) -> bool:
    """Let workers claim from the queue again; returns whether it was paused."""
    _check_pausable(queue)
    try:
        changed = broker.resume_queue(queue)
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    if changed:
        audit(actor, "resume queue", queue=queue)
    return changed


def _check_pausable(queue: str) -> None:
    # The webhook queue is popped by RQ's own dequeue, which knows no pause.
    if queue not in DELIVERY_QUEUES:
        raise IllegalTransition(f"{queue} is not a delivery queue: it cannot pause.")
