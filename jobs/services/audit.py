"""The audit log: who did what to which jobs."""

from jobs.models import AuditEntry, Job


def audit(actor: str, action: str, *, job: Job | None = None, **fields) -> None:
    AuditEntry.objects.create(actor=actor, action=action, job=job, **fields)
