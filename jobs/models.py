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
        # Held back by a pause of its campaign or workspace: in no RQ queue or
        # schedule until resumed.
        PAUSED = "paused"
        ACTIVE = "active"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=8, choices=Type.choices)
    queue = models.CharField(max_length=64)
    workspace_id = models.CharField(max_length=255)
    contact_id = models.CharField(max_length=255)
    # Phone number or email address, and metadata.campaignId: what operators search by.
    recipient = models.CharField(max_length=254, blank=True)
    campaign_id = models.CharField(max_length=255, blank=True)
    # The request as the client sent it; the callback body is this plus jobId.
    payload = models.JSONField()
    metadata = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=2048)
    status = models.CharField(max_length=16, choices=Status.choices)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField()
    last_error = models.TextField(blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The time the client asked for (delay or sendAt), before quiet hours and
    # rate limits moved it; null for jobs made before it was recorded.
    requested_for = models.DateTimeField(null=True, blank=True)
    # The IANA time zone the client gave (or the workspace's): for local times.
    timezone = models.CharField(max_length=64, blank=True)
    # Why due_at differs from requested_for: "", "quiet-hours" or "rate-limit".
    deferred_reason = models.CharField(max_length=32, blank=True)
    # When the message is meant to go out (lateness counts from it); changes only
    # when a client or operator reschedules the job.
    due_at = models.DateTimeField()
    # When the next attempt is due: due_at, then each retry's time.
    scheduled_for = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The RQ worker running the current attempt: the watchdog checks it is alive.
    worker = models.CharField(max_length=128, blank=True)
    # Idempotency-Key of the request that created the job (unique per workspace for
    # 24 h) and a hash of that request, to refuse the key's reuse for another one.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    # The failure webhook: "", pending, delivered or failed.
    webhook_status = models.CharField(max_length=16, blank=True)
    webhook_attempts = models.PositiveIntegerField(default=0)
    webhook_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # Admin and dashboard job lists, newest first (the admin adds -pk).
            models.Index(fields=["-created_at", "-id"], name="job_created"),
            # Dashboard counts and lists per status, newest first.
            models.Index(
                fields=["status", "-created_at", "-id"], name="job_status_created"
            ),
            # Overdue check and oldest waiting job: pending jobs by due time.
            models.Index(fields=["status", "scheduled_for"], name="job_status_due"),
            # Dashboard statistics: completed / failed in the last hour.
            models.Index(fields=["status", "finished_at"], name="job_status_finished"),
            # Per-queue counts (GROUP BY queue, status) and the dashboard's job list
            # of one queue and status, newest first.
            models.Index(
                fields=["queue", "status", "-created_at", "-id"],
                name="job_queue_status_created",
            ),
            # The dashboard's job list of one queue, newest first.
            models.Index(
                fields=["queue", "-created_at", "-id"], name="job_queue_created"
            ),
            # The dashboard's job list sorted by next attempt (any status).
            models.Index(fields=["scheduled_for", "id"], name="job_scheduled"),
            # Jobs of one workspace / one contact (admin filters and search).
            models.Index(
                fields=["workspace_id", "-created_at", "-id"], name="job_workspace"
            ),
            models.Index(fields=["contact_id"], name="job_contact"),
            # Admin and dashboard search by phone number / email address.
            models.Index(fields=["recipient"], name="job_recipient"),
            # A campaign's jobs: search, GET /api/jobs?campaignId= (newest first)
            # and the campaign operations (cancel, pause, ...).
            models.Index(
                fields=["campaign_id", "-created_at", "-id"],
                name="job_campaign_created",
            ),
        ]
        constraints = [
            # A repeated request with the same key finds the first job, never a twin.
            models.UniqueConstraint(
                fields=["workspace_id", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="job_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"


def short_job_id(job_id) -> str:
    """What lists show of a job id: its last 8 hex digits. Ids are time-ordered
    (jobs.services.scheduling.new_ids), so their first 8 are the same for every
    job of the same minute; the last are random."""
    return str(job_id)[-8:]


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
        indexes = [
            # Dashboard statistics: attempts of the last hour (durations, lateness).
            models.Index(fields=["started_at"], name="attempt_started"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "number"], name="attempt_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.job_id}"


class AuditEntry(models.Model):
    """Who did what to which job or queue from the dashboard or the admin."""

    at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=32)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    queue = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"


class PausedScope(models.Model):
    """A paused campaign or workspace: its jobs scheduled later are held too.

    Written by jobs_pause, deleted by jobs_resume and jobs_cancel. A campaign
    paused with an API key limited to one workspace holds that workspace's jobs of
    the campaign only (campaign ids are the clients' own and may repeat across
    workspaces); "" stands for "any".
    """

    campaign_id = models.CharField(max_length=255, blank=True)
    workspace_id = models.CharField(max_length=255, blank=True)
    paused_at = models.DateTimeField()
    actor = models.CharField(max_length=150)

    class Meta:
        ordering = ["-paused_at"]
        constraints = [
            # One pause per scope; its index also serves the look-up made for every
            # new job (jobs.services.holds).
            models.UniqueConstraint(
                fields=["campaign_id", "workspace_id"], name="paused_scope_unique"
            )
        ]

    def __str__(self) -> str:
        if not self.campaign_id:
            return f"workspace {self.workspace_id}"
        where = f" in workspace {self.workspace_id}" if self.workspace_id else ""
        return f"campaign {self.campaign_id}{where}"


class ApiKey(models.Model):
    """A key for /api/*: stored hashed, optionally limited to one workspace."""

    name = models.CharField(max_length=100)
    # The key's first characters, shown in the admin and used to find it.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    workspace_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="Empty: the key may act for every workspace.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Workspace(models.Model):
    """Per-workspace sending rules, set in the admin. No row: the defaults."""

    workspace_id = models.CharField(max_length=255, unique=True)
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA time zone (e.g. America/New_York): for quiet hours, and for "
        "sendAt values without an offset when the request names no timezone.",
    )
    quiet_hours_start = models.TimeField(
        null=True,
        blank=True,
        help_text="Local time when quiet hours begin (e.g. 21:00). Empty: none.",
    )
    quiet_hours_end = models.TimeField(
        null=True,
        blank=True,
        help_text="Local time when quiet hours end (e.g. 08:00).",
    )
    rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Messages per second to the backend for this workspace. "
        "Empty: WORKSPACE_RATE_LIMIT; 0: unlimited.",
    )

    def __str__(self) -> str:
        return self.workspace_id
