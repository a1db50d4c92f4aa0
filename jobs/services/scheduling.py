"""New jobs, one request at a time (the batch path is jobs.services.batch)."""

import os
import time
import uuid

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.delivery import callback_urls
from jobs.models import Job
from jobs.queues import queue_name_for
from jobs.ratelimit import plans_within_rate
from jobs.rows import instance_builder
from jobs.sendtime import SendPlan, plan_send
from jobs.services.errors import IdempotencyConflict, QueueUnavailable
from jobs.services.groupcommit import GroupCommit
from jobs.services.holds import holds_for, release_unheld
from jobs.services.idempotency import earlier_jobs, request_hash, same_request
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
    workspace_id = str(payload["workspaceId"])
    # Only a key can be repeated: no hash (and none stored) without one.
    digest = request_hash(job_type, payload) if idempotency_key else ""
    if idempotency_key:
        earlier = _earlier_job(workspace_id, idempotency_key, job_type, payload, digest)
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
        earlier = _earlier_job(workspace_id, idempotency_key, job_type, payload, digest)
        if earlier is None:
            raise
        return earlier, True
    release_unheld([job])
    return job, False


# One per process: requests without an idempotency key are written together (one
# insert and one Redis call for all the requests that overlap).
_writer = GroupCommit(store_and_place)


def _earlier_job(workspace_id, key, job_type, payload, digest) -> Job | None:
    earlier = earlier_jobs({(workspace_id, key)}, timezone.now()).get(
        (workspace_id, key)
    )
    if earlier is not None and not same_request(earlier, job_type, payload, digest):
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
    one of new_ids(), or a new one.
    """
    return JobMaker()(job_type, payload, plan, idempotency_key, digest, held, job_id)


class JobMaker:
    """new_job for many requests: the settings and the model's init receivers it
    needs, looked up once (a batch's 1,000 jobs looked them up 6,000 times)."""

    def __init__(self):
        self.max_attempts = settings.JOB_ATTEMPTS
        self.callback_url = callback_urls()
        self.build = instance_builder(Job)

    def __call__(
        self, job_type, payload, plan, idempotency_key, digest, held=None, job_id=None
    ) -> Job:
        metadata = payload.get("metadata") or {}
        workspace_id = str(payload["workspaceId"])
        campaign = campaign_id(payload)
        held_by = (held or {}).get((campaign, workspace_id))
        if held_by is not None:
            status = Job.Status.PAUSED
        else:
            status = Job.Status.DELAYED if plan.delayed else Job.Status.WAITING
        job = self.build(
            {
                "id": job_id or new_ids(1)[0],
                "type": job_type,
                "queue": queue_name_for(job_type, delayed=plan.delayed),
                "workspace_id": workspace_id,
                "contact_id": str(payload["contactId"]),
                "recipient": str(payload.get("phoneNumber") or payload.get("to") or ""),
                "campaign_id": campaign,
                "payload": payload,
                "metadata": metadata,
                "callback_url": self.callback_url(job_type, metadata),
                "status": status,
                "max_attempts": self.max_attempts,
                "requested_for": plan.requested_for,
                "timezone": plan.timezone_name,
                "deferred_reason": plan.deferred_reason,
                "due_at": plan.due_at,
                "scheduled_for": plan.due_at,
                "idempotency_key": idempotency_key or None,
                "request_hash": digest,
            }
        )
        job.held_by = held_by
        return job


def new_ids(count: int) -> list[uuid.UUID]:
    """`count` time-ordered UUIDs (version 7, RFC 9562: the millisecond, then 74
    random bits) from one read of the OS's random source.

    Time-ordered, the jobs' primary-key index grows at its end: a random (version
    4) id put each of a batch's 1,000 rows on another page of that index, all of
    them written again at the commit. One read: uuid4() reads the random source
    once per id, a system call where the thread gives up the GIL.
    """
    head = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | 0b10 << 62
    random = os.urandom(16 * count)
    return [
        _uuid_from_int(head | int.from_bytes(random[start : start + 16]) & _RANDOM)
        for start in range(0, 16 * count, 16)
    ]


# rand_a (the 12 bits below the version) and rand_b (the 62 below the variant).
_RANDOM = 0xFFF << 64 | (1 << 62) - 1


def _uuid_from_int(value: int) -> uuid.UUID:
    # UUID(int=value) without its argument checks (value is in range by
    # construction): 1.0 µs an id instead of 2.0 (timeit), as CPython 3.14's
    # UUID._from_int does.
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made
