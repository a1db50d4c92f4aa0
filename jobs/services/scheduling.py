import hashlib
import json
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.delivery import callback_url
from jobs.models import Job
from jobs.queues import queue_name_for
from jobs.ratelimit import plans_within_rate
from jobs.sendtime import SendPlan, plan_send
from jobs.services.common import (
    QueueUnavailable,
    enqueue_deliveries,
    store_and_enqueue,
)
from jobs.services.groupcommit import GroupCommit
from jobs.services.holds import holds_for, release_unheld


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used for a different request."""


def job_schedule(
    *,
    job_type: str,
    payload: dict,
    plan: SendPlan | None = None,
    delay_ms: int = 0,
    idempotency_key: str | None = None,
    rate_limit: bool = True,
) -> tuple[Job, bool]:
    """Record a job, then hand it to RQ (due now) or the scheduler (due later).

    `plan` says when (jobs.sendtime.plan_send); without one, delay_ms from now.
    The workspace's rate limit may move it later (jobs.ratelimit); rate_limit=False
    when the plan already went through jobs.ratelimit.plans_within_rate (a batch).

    The row is committed before Redis sees the job, so a worker never meets an
    uncommitted row; if Redis refuses, the row is removed and nothing is sent.
    With an idempotency key seen in the last IDEMPOTENCY_TTL_S for the workspace,
    nothing new is made: returns (the first job, True).
    """
    request_hash = _request_hash(job_type, payload)
    workspace_id = str(payload["workspaceId"])
    if idempotency_key:
        earlier = _earlier_job(workspace_id, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, True
    if plan is None:
        plan = plan_send(now=timezone.now(), delay_ms=delay_ms)
    # A paused campaign or workspace holds the job (jobs.services.holds); a held
    # job takes no rate-limit slot: resume releases it as it releases the others.
    held = holds_for([(_campaign_id(payload), workspace_id)], fresh=False)
    if rate_limit and not held:
        try:
            [plan] = plans_within_rate(workspace_id, [plan])
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
    if not idempotency_key:
        job = new_job(job_type, payload, plan, None, request_hash, held)
        _writer.submit(job)
        release_unheld([job])
        return job, False
    try:
        job = _create(job_type, payload, plan, idempotency_key, request_hash, held)
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        earlier = _earlier_job(workspace_id, idempotency_key, request_hash)
        if earlier is None:
            raise
        return earlier, True
    try:
        # Waiting, delayed or held by a pause: its status says which.
        enqueue_deliveries([job])
    except RedisError as exc:
        Job.objects.filter(pk=job.pk).delete()
        raise QueueUnavailable(str(exc)) from exc
    release_unheld([job])
    return job, False


# One per process: requests without an idempotency key are written together (one
# insert and one Redis transaction for all the requests that overlap).
# Keyed ones go alone, as a unique-key clash must fail only its own request.
_writer = GroupCommit(store_and_enqueue)


def _request_hash(job_type: str, payload: dict) -> str:
    canonical = json.dumps([job_type, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _earlier_job(workspace_id: str, key: str, request_hash: str) -> Job | None:
    """The live job made with this key, after retiring one older than the TTL."""
    earlier = Job.objects.filter(workspace_id=workspace_id, idempotency_key=key).first()
    if earlier is None:
        return None
    expired = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_S)
    if earlier.created_at < expired:
        Job.objects.filter(pk=earlier.pk).update(idempotency_key=None)
        return None
    if earlier.request_hash != request_hash:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request."
        )
    return earlier


def _create(job_type, payload, plan, idempotency_key, request_hash, held) -> Job:
    job = new_job(job_type, payload, plan, idempotency_key, request_hash, held)
    # durable: refuse to run inside an outer transaction that could still roll back.
    with transaction.atomic(durable=True):
        job.save(force_insert=True)
    return job


def _campaign_id(payload: dict) -> str:
    return str((payload.get("metadata") or {}).get("campaignId") or "")


def new_job(job_type, payload, plan, idempotency_key, request_hash, held=None) -> Job:
    """The Job row for a request, not saved yet (jobs.services.bulk saves many).

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
        campaign_id=_campaign_id(payload),
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
        request_hash=request_hash,
    )
    job.held_by = (held or {}).get((job.campaign_id, job.workspace_id))
    if job.held_by is not None:
        job.status = Job.Status.PAUSED
    return job
