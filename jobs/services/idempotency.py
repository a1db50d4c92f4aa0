"""Idempotency keys: a key repeated within IDEMPOTENCY_TTL_S, for the same
workspace, returns the job it first made instead of making another."""

import hashlib
import json
from datetime import datetime, timedelta

from django.conf import settings

from jobs.models import Job

Key = tuple[str, str]  # (workspace_id, idempotency key)


def request_hash(job_type: str, payload: dict) -> str:
    """What tells a repeated request from a different one under the same key."""
    canonical = json.dumps([job_type, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def earlier_jobs(wanted: set[Key], now: datetime) -> dict[Key, Job]:
    """The live jobs made with these keys, in one query; a key older than the TTL
    is retired on the way (its job keeps its row, the key is free again)."""
    if not wanted:
        return {}
    rows = Job.objects.filter(
        workspace_id__in={workspace for workspace, _ in wanted},
        idempotency_key__in={key for _, key in wanted},
    )
    expired_before = now - timedelta(seconds=settings.IDEMPOTENCY_TTL_S)
    live, expired = {}, []
    for job in rows:
        key = (job.workspace_id, job.idempotency_key)
        if key not in wanted:
            continue
        if job.created_at < expired_before:
            expired.append(job.pk)
        else:
            live[key] = job
    if expired:
        Job.objects.filter(pk__in=expired).update(idempotency_key=None)
    return live
