"""Input and output shapes of the HTTP API (the seed's JSON, field for field)."""

import copy
import re
import unicodedata
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job
from jobs.sendtime import (
    AMBIGUOUS,
    MAX_SEND_AT_LENGTH,
    NONEXISTENT,
    SendPlan,
    SendTimeError,
    dst_rule_of,
    local_iso,
    plan_for_request,
    send_at_was_past,
    zone,
)
from jobs.workspaces import workspace_rules

# [0-9], not \d: Python's \d takes any Unicode digit ("+1٤١٥..."). fullmatch, as
# "$" alone would take a trailing newline; the anchors are for the OpenAPI pattern.
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# Characters allowed in a path (and query) by RFC 3986, minus '@' and '\'.
PATH_CHARS = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:/?%]*$")
# The callback URL (the backend's URL and the path) is kept in Job.callback_url.
MAX_CALLBACK_URL_LENGTH = Job._meta.get_field("callback_url").max_length
MAX_ID_LENGTH = 255
MAX_IDEMPOTENCY_KEY = 255


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would turn 42 into '42'."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            {"type": "integer"},
        ]
    }
)
class IdField(serializers.Field):
    """contactId / workspaceId: a non-empty string or an integer, kept as sent."""

    def to_internal_value(self, data):
        error = id_error(data)
        if error:
            raise serializers.ValidationError(error)
        return data

    def to_representation(self, value):
        return value


def id_error(data) -> str | None:
    """What is wrong with a contactId or workspaceId, if anything."""
    if isinstance(data, bool) or not isinstance(data, (str, int)):
        return "Must be a string or an integer."
    if isinstance(data, str) and not data.strip():
        return "Must not be blank."
    if len(str(data)) > MAX_ID_LENGTH:
        return f"Must be at most {MAX_ID_LENGTH} characters."
    return None


@extend_schema_field(
    {"type": "integer", "minimum": 0, "nullable": True, "description": "milliseconds"}
)
class DelayField(serializers.Field):
    """Milliseconds from now: a whole number from 0 to MAX_DELAY_MS.

    Absent or null is None (now), so that a sendAt next to it can be refused.
    """

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def validate_empty_values(self, data):
        if data is serializers.empty or data is None:
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        error = delay_error(data)
        if error:
            raise serializers.ValidationError(error)
        return int(data)


def delay_error(data) -> str | None:
    """What is wrong with a delay (not null), if anything."""
    is_whole_float = isinstance(data, float) and data.is_integer()
    if isinstance(data, bool) or not (isinstance(data, int) or is_whole_float):
        return "Must be a whole number of milliseconds."
    if data < 0:
        return "Must not be negative."
    if data > settings.MAX_DELAY_MS:
        return f"Must be at most {settings.MAX_DELAY_MS} ms (MAX_DELAY_MS)."
    return None


def max_endpoint_length() -> int:
    """The longest path whose callback URL, with either backend URL, fits its
    column (PostgreSQL refuses a longer one: a 500, not an answer)."""
    longest = max(len(settings.SMS_API_URL), len(settings.EMAIL_API_URL))
    return MAX_CALLBACK_URL_LENGTH - longest


def validate_callback_endpoint(value) -> None:
    """A plain absolute path: nothing that could change the backend host."""
    if not isinstance(value, str):
        raise serializers.ValidationError("callbackEndpoint must be a string.")
    if len(value) > max_endpoint_length():
        raise serializers.ValidationError(
            f"callbackEndpoint must be at most {max_endpoint_length()} characters "
            f"(with the backend's URL, {MAX_CALLBACK_URL_LENGTH})."
        )
    decoded = unquote(value)
    unsafe = (
        not PATH_CHARS.fullmatch(value)
        or any(part in decoded for part in ("//", "..", "@", "\\", "#"))
        or any(ord(char) < 32 or ord(char) == 127 for char in decoded)
    )
    if unsafe:
        raise serializers.ValidationError(
            "callbackEndpoint must be a plain path such as /send-sms "
            "(no scheme, host, '//', '..', '@', '\\' or control characters)."
        )


def validate_metadata(data) -> None:
    """An object; its callbackEndpoint a plain path, its campaignId one that fits
    the job's campaign_id column (jobs.services.scheduling keeps it as text)."""
    if not isinstance(data, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    if "callbackEndpoint" in data and data["callbackEndpoint"] is not None:
        validate_callback_endpoint(data["callbackEndpoint"])
    campaign = data.get("campaignId")
    if campaign is not None and len(str(campaign)) > MAX_ID_LENGTH:
        raise serializers.ValidationError(
            f"campaignId must be at most {MAX_ID_LENGTH} characters."
        )


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "additionalProperties": True,
        "properties": {
            "callbackEndpoint": {"type": "string", "pattern": r"^/[A-Za-z0-9\-_~/]*$"},
            "idempotencyKey": {"type": "string", "minLength": 1, "maxLength": 255},
            # Any JSON value, kept as text: at most MAX_ID_LENGTH characters.
            "campaignId": {"maxLength": MAX_ID_LENGTH},
        },
    }
)
class MetadataField(serializers.Field):
    """Free-form object passed through; only callbackEndpoint is checked."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        validate_metadata(data)
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "maxLength": MAX_SEND_AT_LENGTH,
        "description": "ISO-8601 date-time with an offset (2026-12-01T09:00:00-05:00),"
        " or a local time (2026-12-01T09:00:00) read in `timezone`, else in the "
        "workspace's time zone. Not with `delay`.",
        "example": "2026-12-01T09:00:00",
    }
)
class SendAtField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.update(required=False, allow_null=True, max_length=MAX_SEND_AT_LENGTH)
        super().__init__(**kwargs)


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "maxLength": 64,
        "description": "IANA time zone of a local sendAt, and of scheduledForLocal.",
        "example": "America/New_York",
    }
)
class TimeZoneField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.update(required=False, allow_null=True, max_length=64)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            zone(value)
        except SendTimeError as exc:
            raise serializers.ValidationError(exc.message) from None
        return value


@extend_schema_field({"type": "boolean", "default": True})
class StrictBooleanField(serializers.BooleanField):
    """true or false only: DRF's BooleanField would take "no", 0 or "off"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.")
        return data


class ShallowFields:
    """Each instance gets shallow copies of the declared fields.

    DRF deep-copies them, which re-runs every field's __init__: over a quarter of a
    schedule request's CPU time in py-spy. A shallow copy is safe for fields that
    nothing changes after __init__ but bind() (their validators and messages are
    only read); nested serializers get their own fields when first used.
    """

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class ScheduleCommon(ShallowFields, serializers.Serializer):
    contactId = IdField()
    workspaceId = IdField()
    delay = DelayField()
    sendAt = SendAtField()
    timezone = TimeZoneField()
    respectQuietHours = StrictBooleanField(required=False, default=True)
    metadata = MetadataField()

    def send_plan(self) -> SendPlan:
        """When the validated request is due (jobs.sendtime), past quiet hours.

        Called after the workspace check, so that a caller learns nothing about
        another workspace's rules. A SendTimeError is a 400 on its field.
        """
        return send_plan_for(self.validated_data)


def send_plan_for(data: dict) -> SendPlan:
    """ScheduleCommon.send_plan for validated data (a 400 on a SendTimeError)."""
    workspace = workspace_rules(data["workspaceId"])
    try:
        return plan_for_request(data, now=timezone.now(), workspace=workspace)
    except SendTimeError as exc:
        raise serializers.ValidationError({exc.field: [exc.message]}) from None


@extend_schema_field({"type": "string", "pattern": E164.pattern})
class PhoneNumberField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=16, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not E164.fullmatch(value):
            raise serializers.ValidationError(
                "Enter a phone number in E.164 format, such as +14155550123."
            )
        return value


@extend_schema_field({"type": "string", "format": "email", "maxLength": 254})
class EmailAddressField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=254, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_email_address(value):
            raise serializers.ValidationError("Enter a valid email address.")
        return value


def is_email_address(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    try:
        validate_email(value)
    except DjangoValidationError:
        return False
    # Django's local-part pattern is ASCII but case-insensitive, so "ſ" and the
    # Kelvin sign pass as "s" and "k"; an IDN domain stays, but not in a second
    # spelling of itself (fullwidth "１２３" is "123" once normalized).
    return local.isascii() and unicodedata.normalize("NFKC", domain) == domain


class ScheduleSmsInput(ScheduleCommon):
    phoneNumber = PhoneNumberField()
    message = StrictCharField()


class ScheduleEmailInput(ScheduleCommon):
    to = EmailAddressField()
    subject = StrictCharField(allow_blank=True, max_length=998)
    html = StrictCharField()


class DeferredOutput(serializers.Serializer):
    reason = serializers.CharField(source="deferred_reason")
    requestedFor = serializers.DateTimeField(source="requested_for")
    requestedForLocal = serializers.SerializerMethodField()

    def get_requestedForLocal(self, job) -> str | None:
        return local_iso(job.requested_for, job.timezone)


class OptionalJobField(serializers.Field):
    """A field of the whole job that answers may leave out: optional in the schema
    (drf-spectacular makes read-only fields required in responses)."""

    def __init__(self, **kwargs):
        super().__init__(source="*", required=False, **kwargs)


@extend_schema_field({"type": "string", "enum": [NONEXISTENT, AMBIGUOUS]})
class DstField(OptionalJobField):
    """The DST rule the job's sendAt needed; left out of answers where no rule
    applied."""

    def to_representation(self, job):
        payload = job.payload if isinstance(job.payload, dict) else {}
        return dst_rule_of(payload.get("sendAt"), job.timezone)


@extend_schema_field(
    {
        "type": "boolean",
        "description": "Present when sendAt was already past: the message is sent "
        "at once.",
    }
)
class SendAtInPastField(OptionalJobField):
    def to_representation(self, job):
        return send_at_in_past(job)


def send_at_in_past(job) -> bool:
    payload = job.payload if isinstance(job.payload, dict) else {}
    return send_at_was_past(payload.get("sendAt"), job.timezone, job.requested_for)


def clean_idempotency_key(key) -> str | None:
    """An Idempotency-Key (header or metadata.idempotencyKey), stripped, or None."""
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key.strip()) <= MAX_IDEMPOTENCY_KEY:
        message = f"Must be a string of 1 to {MAX_IDEMPOTENCY_KEY} characters."
        raise serializers.ValidationError({"idempotencyKey": [message]})
    return key.strip()


class HeldOutput(serializers.Serializer):
    by = serializers.ChoiceField(choices=["campaign", "workspace"])


@extend_schema_field({"type": "string", "enum": ["paused"]})
class HeldStatusField(OptionalJobField):
    def to_representation(self, job):
        return job.status


@extend_schema_field(HeldOutput)
class HeldByField(OptionalJobField):
    def to_representation(self, job):
        return None  # filled in by held_fields


class ScheduleOutput(ShallowFields, serializers.Serializer):
    """The answer to a schedule request, read from the job's row so that an
    idempotent replay answers the same. `context["message"]` is the message.
    dst, deferred and sendAtInPast appear only when they apply.
    """

    success = serializers.SerializerMethodField()
    jobId = serializers.UUIDField(source="id")
    message = serializers.SerializerMethodField()
    scheduledFor = serializers.DateTimeField(source="due_at")
    scheduledForLocal = serializers.SerializerMethodField()
    timezone = serializers.SerializerMethodField()
    dst = DstField()
    deferred = DeferredOutput(source="*", required=False)
    sendAtInPast = SendAtInPastField()
    # Only for a job held by a paused campaign or workspace (held_fields).
    status = HeldStatusField()
    paused = HeldByField()

    def get_success(self, job) -> bool:
        return True

    def get_message(self, job) -> str:
        return self.context["message"]

    def get_scheduledForLocal(self, job) -> str | None:
        return local_iso(job.due_at, job.timezone)

    def get_timezone(self, job) -> str | None:
        return job.timezone or None

    def to_representation(self, job):
        data = super().to_representation(job)
        if not data["dst"]:
            del data["dst"]
        if not data["sendAtInPast"]:
            del data["sendAtInPast"]
        if not job.deferred_reason or job.requested_for is None:
            del data["deferred"]
        del data["status"], data["paused"]
        data.update(held_fields(job))
        return data


def held_fields(job) -> dict:
    """For a job held by a paused campaign or workspace (else nothing): its status,
    and what holds it when known (a replay answers only the status)."""
    if job.status != Job.Status.PAUSED:
        return {}
    by = getattr(job, "held_by", None)
    return {"status": job.status, **({"paused": {"by": by}} if by else {})}


class ErrorOutput(serializers.Serializer):
    success = serializers.BooleanField()
    error = serializers.CharField()
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField())
    )


class AttemptOutput(serializers.Serializer):
    attempt = serializers.IntegerField(source="number")
    startedAt = serializers.DateTimeField(source="started_at")
    durationMs = serializers.IntegerField(source="duration_ms")
    httpStatus = serializers.IntegerField(source="http_status", allow_null=True)
    error = serializers.CharField()
    succeeded = serializers.BooleanField()


class JobStatusOutput(serializers.Serializer):
    jobId = serializers.UUIDField(source="id")
    type = serializers.CharField()
    status = serializers.CharField()
    queue = serializers.CharField()
    attempts = serializers.IntegerField()
    maxAttempts = serializers.IntegerField(source="max_attempts")
    workspaceId = serializers.CharField(source="workspace_id")
    contactId = serializers.CharField(source="contact_id")
    callbackUrl = serializers.CharField(source="callback_url")
    scheduledFor = serializers.DateTimeField(source="scheduled_for")
    scheduledForLocal = serializers.SerializerMethodField()
    requestedFor = serializers.DateTimeField(source="requested_for", allow_null=True)
    dueAt = serializers.DateTimeField(source="due_at")
    timezone = serializers.SerializerMethodField()
    deferredReason = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    # null until the first attempt starts, and until the job is done.
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    lastError = serializers.SerializerMethodField()
    lastHttpStatus = serializers.IntegerField(
        source="last_http_status", allow_null=True
    )
    deliveryAttempts = AttemptOutput(source="attempt_log.all", many=True)
    webhookStatus = serializers.CharField(source="webhook_status")
    webhookAttempts = serializers.IntegerField(source="webhook_attempts")

    def get_lastError(self, job) -> str | None:
        return job.last_error or None

    def get_scheduledForLocal(self, job) -> str | None:
        return local_iso(job.scheduled_for, job.timezone)

    def get_timezone(self, job) -> str | None:
        return job.timezone or None

    def get_deferredReason(self, job) -> str | None:
        return job.deferred_reason or None
