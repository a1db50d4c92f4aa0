import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.delivery import callback_url
from jobs.models import Job
from jobs.queues import queue_name_for
from jobs.services.common import QueueUnavailable, enqueue_delivery


def job_schedule(*, job_type: str, payload: dict, delay_ms: int) -> Job:
    """Record a job, then hand it to RQ (now) or the scheduler (delay_ms > 0).

    The row is committed before Redis sees the job, so a worker never meets an
    uncommitted row; if Redis refuses, the row is removed and nothing is sent.
    """
    metadata = payload.get("metadata") or {}
    due_at = timezone.now() + timedelta(milliseconds=delay_ms)
    job = Job(
        id=uuid.uuid4(),
        type=job_type,
        queue=queue_name_for(job_type, delayed=delay_ms > 0),
        workspace_id=str(payload["workspaceId"]),
        contact_id=str(payload["contactId"]),
        recipient=str(payload.get("phoneNumber") or payload.get("to") or ""),
        campaign_id=str(metadata.get("campaignId") or ""),
        payload=payload,
        metadata=metadata,
        callback_url=callback_url(job_type, metadata),
        status=Job.Status.DELAYED if delay_ms > 0 else Job.Status.WAITING,
        max_attempts=settings.JOB_ATTEMPTS,
        due_at=due_at,
        scheduled_for=due_at,
    )
    # durable: refuse to run inside an outer transaction that could still roll back.
    with transaction.atomic(durable=True):
        job.save(force_insert=True)
    try:
        enqueue_delivery(job, delayed=delay_ms > 0)
    except RedisError as exc:
        Job.objects.filter(pk=job.pk).delete()
        raise QueueUnavailable(str(exc)) from exc
    return job
