import uuid

from django.db import models


class Job(models.Model):
    """The durable record of one scheduled message; its id is also the RQ job id."""

    class Type(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"

    class Status(models.TextChoices):
        WAITING = "waiting"
        DELAYED = "delayed"
        ACTIVE = "active"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=8, choices=Type.choices)
    queue = models.CharField(max_length=64)
    workspace_id = models.CharField(max_length=255)
    contact_id = models.CharField(max_length=255)
    # The request as the client sent it; the callback body is this plus jobId.
    payload = models.JSONField()
    metadata = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=2048)
    status = models.CharField(max_length=16, choices=Status.choices)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField()
    last_error = models.TextField(blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # When the next attempt is due: the requested time, then each retry's time.
    scheduled_for = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Dashboard counts and lists per status, newest first.
            models.Index(fields=["status", "-created_at"], name="job_status_created"),
            # Overdue check: pending jobs ordered by due time.
            models.Index(fields=["status", "scheduled_for"], name="job_status_due"),
            # Per-queue views of the dashboard.
            models.Index(fields=["queue", "status"], name="job_queue_status"),
            # Jobs of one workspace / one contact (admin filters and search).
            models.Index(fields=["workspace_id", "-created_at"], name="job_workspace"),
            models.Index(fields=["contact_id"], name="job_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"


class JobAttempt(models.Model):
    """One delivery attempt: what the backend answered, or why it could not."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField()

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "number"], name="attempt_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.job_id}"
