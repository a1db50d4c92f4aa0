"""New jobs, one request at a time (the batch path is jobs.services.batch)."""

import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.delivery import callback_url
from jobs.models import Job
from jobs.queues import queue_name_for
from jobs.ratelimit import plans_within_rate
from jobs.sendtime import SendPlan, plan_send
from jobs.services.errors import IdempotencyConflict, QueueUnavailable
from jobs.services.groupcommit import GroupCommit
from jobs.services.holds import holds_for, release_unheld
from jobs.services.idempotency import earlier_jobs, request_hash
from jobs.services.storing import place_jobs, store_and_place


def job_schedule(
    *,
    job_type: str,
    payload: dict,
    plan: SendPlan | None = None,
    delay_ms: int = 0,
    idempotency_key: str | None = None,
    rate_limit: bool = True,
) -> tuple[Job, bool]:
    """Record a job, then hand it to Redis: its queue (due now) or the scheduler
    (due later).

    `plan` says when (jobs.sendtime.plan_send); without one, delay_ms from now.
    The workspace's rate limit may move it later (jobs.ratelimit); rate_limit=False
    when the plan already went through jobs.ratelimit.plans_within_rate.

    The row is committed before Redis sees the job, so a worker never meets an
    uncommitted row; if Redis refuses, the row is removed and nothing is sent.
    With an idempotency key seen in the last IDEMPOTENCY_TTL_S for the workspace,
    nothing new is made: returns (the first job, True).
    """
    digest = request_hash(job_type, payload)
    workspace_id = str(payload["workspaceId"])
    if idempotency_key:
        earlier = _earlier_job(workspace_id, idempotency_key, digest)
        if earlier is not None:
            return earlier, True
    if plan is None:
        plan = plan_send(now=timezone.now(), delay_ms=delay_ms)
    # A paused campaign or workspace holds the job (jobs.services.holds); a held
    # job takes no rate-limit slot: resume releases it as it releases the others.
    held = holds_for([(campaign_id(payload), workspace_id)], fresh=False)
    if rate_limit and not held:
        try:
            [plan] = plans_within_rate(workspace_id, [plan])
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
    job = new_job(job_type, payload, plan, idempotency_key, digest, held)
    if not idempotency_key:
        _writer.submit(job)
        release_unheld([job])
        return job, False
    # Keyed requests go alone: a unique-key clash must fail only its own request.
    try:
        with transaction.atomic(durable=True):
            job.save(force_insert=True)
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        earlier = _earlier_job(workspace_id, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier, True
    try:
        place_jobs([job])
    except RedisError as exc:
        Job.objects.filter(pk=job.pk).delete()
        raise QueueUnavailable(str(exc)) from exc
    release_unheld([job])
    return job, False


# One per process: requests without an idempotency key are written together (one
# insert and one Redis call for all the requests that overlap).
_writer = GroupCommit(store_and_place)


def _earlier_job(workspace_id: str, key: str, digest: str) -> Job | None:
    earlier = earlier_jobs({(workspace_id, key)}, timezone.now()).get(
        (workspace_id, key)
    )
    if earlier is not None and earlier.request_hash != digest:
        raise IdempotencyConflict(IdempotencyConflict.message)
    return earlier


def campaign_id(payload: dict) -> str:
    return str((payload.get("metadata") or {}).get("campaignId") or "")


def new_job(job_type, payload, plan, idempotency_key, digest, held=None) -> Job:
    """The Job row for a request, not saved yet (jobs.services.batch saves many).

    `held`: holds_for's answer for the job's campaign and workspace; a held job is
    paused, and `job.held_by` says by what ("campaign" or "workspace").
    """
    metadata = payload.get("metadata") or {}
    job = Job(
        id=uuid.uuid4(),
        type=job_type,
        queue=queue_name_for(job_type, delayed=plan.delayed),
        workspace_id=str(payload["workspaceId"]),
        contact_id=str(payload["contactId"]),
        recipient=str(payload.get("phoneNumber") or payload.get("to") or ""),
        campaign_id=campaign_id(payload),
        payload=payload,
        metadata=metadata,
        callback_url=callback_url(job_type, metadata),
        status=Job.Status.DELAYED if plan.delayed else Job.Status.WAITING,
        max_attempts=settings.JOB_ATTEMPTS,
        requested_for=plan.requested_for,
        timezone=plan.timezone_name,
        deferred_reason=plan.deferred_reason,
        due_at=plan.due_at,
        scheduled_for=plan.due_at,
        idempotency_key=idempotency_key or None,
        request_hash=digest,
    )
    job.held_by = (held or {}).get((job.campaign_id, job.workspace_id))
    if job.held_by is not None:
        job.status = Job.Status.PAUSED
    return job
