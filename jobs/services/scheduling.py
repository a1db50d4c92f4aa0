"""New jobs, one request at a time (the batch path is jobs.services.batch)."""

import os
import uuid

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.delivery import callback_url
from jobs.models import Job
from jobs.queues import queue_name_for
from jobs.ratelimit import plans_within_rate
from jobs.rows import new_instance
from jobs.sendtime import SendPlan, plan_send
from jobs.services.errors import IdempotencyConflict, QueueUnavailable
from jobs.services.groupcommit import GroupCommit
from jobs.services.holds import holds_for, release_unheld
from jobs.services.idempotency import earlier_jobs, request_hash
from jobs.services.storing import store_and_place


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
        store_and_place([job])
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        earlier = _earlier_job(workspace_id, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier, True
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


def new_job(
    job_type, payload, plan, idempotency_key, digest, held=None, job_id=None
) -> Job:
    """The Job row for a request, not saved yet (jobs.services.batch saves many).

    `held`: holds_for's answer for the job's campaign and workspace; a held job is
    paused, and `job.held_by` says by what ("campaign" or "workspace"). `job_id`:
    one of new_ids(), or a fresh uuid4.
    """
    metadata = payload.get("metadata") or {}
    workspace_id = str(payload["workspaceId"])
    campaign = campaign_id(payload)
    held_by = (held or {}).get((campaign, workspace_id))
    if held_by is not None:
        status = Job.Status.PAUSED
    else:
        status = Job.Status.DELAYED if plan.delayed else Job.Status.WAITING
    job = new_instance(
        Job,
        {
            "id": job_id or uuid.uuid4(),
            "type": job_type,
            "queue": queue_name_for(job_type, delayed=plan.delayed),
            "workspace_id": workspace_id,
            "contact_id": str(payload["contactId"]),
            "recipient": str(payload.get("phoneNumber") or payload.get("to") or ""),
            "campaign_id": campaign,
            "payload": payload,
            "metadata": metadata,
            "callback_url": callback_url(job_type, metadata),
            "status": status,
            "max_attempts": settings.JOB_ATTEMPTS,
            "requested_for": plan.requested_for,
            "timezone": plan.timezone_name,
            "deferred_reason": plan.deferred_reason,
            "due_at": plan.due_at,
            "scheduled_for": plan.due_at,
            "idempotency_key": idempotency_key or None,
            "request_hash": digest,
        },
    )
    job.held_by = held_by
    return job


def new_ids(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs from one read of the OS's random source:
    uuid4() reads it once per id (a system call where the thread gives up the GIL,
    each a tenth of a microsecond of work and a wait for the lock back)."""
    random = os.urandom(16 * count)
    return [
        uuid.UUID(bytes=random[start : start + 16], version=4)
        for start in range(0, 16 * count, 16)
    ]
