"""Many messages in one request: each through the single endpoints' serializers.

Used by POST /api/schedule-batch and `manage.py schedule_csv`; the scheduling
itself is jobs.services.jobs_schedule_batch.
"""

from collections.abc import Iterable

from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from jobs.models import Job
from jobs.services import BatchItem, ItemResult
from queueservices.auth import check_workspace
from queueservices.errors import error_body, field_messages
from queueservices.quickcheck import quick_validated
from queueservices.serializers import (
    HeldOutput,
    ScheduleEmailInput,
    ScheduleSmsInput,
    StrictBooleanField,
    clean_idempotency_key,
    held_fields,
    send_at_in_past,
)

INPUTS = {Job.Type.SMS: ScheduleSmsInput, Job.Type.EMAIL: ScheduleEmailInput}
TYPE_ERROR = 'Must be "sms" or "email".'


def validate_messages(
    messages: Iterable[tuple[int, object]], *, request=None, default_type=None
) -> tuple[list[BatchItem], list[ItemResult]]:
    """(index, message) pairs -> the valid messages and the refused ones.

    `request` limits each message to the workspace of its API key (None: an
    operator, any workspace); `default_type` stands in for a missing "type".
    """
    # One serializer per type, reused: DRF copies a serializer's fields on every
    # instantiation, six times the cost of validating a message (as many=True does).
    inputs = {job_type: form() for job_type, form in INPUTS.items()}
    items, refused = [], []
    for index, message in messages:
        result = _validate(index, message, inputs, request, default_type)
        (items if isinstance(result, BatchItem) else refused).append(result)
    return items, refused


def _validate(index, message, inputs, request, default_type):
    if not isinstance(message, dict):
        return ItemResult(index, errors={"message": ["Must be a JSON object."]})
    job_type = message.get("type", default_type)
    if not isinstance(job_type, str) or job_type not in inputs:
        return ItemResult(index, errors={"type": [TYPE_ERROR]})
    payload = {key: value for key, value in message.items() if key != "type"}
    serializer = inputs[job_type]
    serializer.initial_data = payload
    try:
        data = quick_validated(serializer, payload) or serializer.run_validation(
            payload
        )
        if request is not None:
            check_workspace(request, data["workspaceId"])
        key = clean_idempotency_key((data.get("metadata") or {}).get("idempotencyKey"))
    except exceptions.ValidationError as exc:
        return ItemResult(index, errors=field_messages(exc.detail))
    except exceptions.PermissionDenied as exc:
        return ItemResult(index, errors={"workspaceId": [str(exc.detail)]})
    return BatchItem(index, job_type, payload, data, key)


def batch_body(results: list[ItemResult]) -> dict:
    """The response: counts and one entry per message; the error shape when none
    was scheduled."""
    times = {}  # a batch's jobs mostly share a few scheduled times: written once
    entries = [_entry(result, times) for result in results]
    scheduled = sum(1 for result in results if result.job is not None)
    body = {"success": bool(scheduled), "scheduled": scheduled}
    body["failed"] = len(results) - scheduled
    if not scheduled:
        details = {
            f"messages.{result.index}.{field}": messages
            for result in results
            for field, messages in (result.errors or {}).items()
        }
        error = f"Nothing scheduled: {body['failed']} message(s) refused."
        body.update(error_body(error, details))
    body["results"] = entries
    return body


def _entry(result: ItemResult, times: dict) -> dict:
    if result.job is None:
        return {"index": result.index, "errors": result.errors}
    scheduled_for = result.job.scheduled_for
    # Equal instants in two time zones are equal datetimes, not equal strings.
    key = (scheduled_for, scheduled_for.utcoffset())
    if key not in times:
        times[key] = _iso(scheduled_for)
    entry = {
        "index": result.index,
        "jobId": str(result.job.id),
        "scheduledFor": times[key],
    }
    if result.replayed:
        entry["replayed"] = True
    if send_at_in_past(result.job):
        entry["sendAtInPast"] = True
    entry.update(held_fields(result.job))
    return entry


def _iso(instant) -> str:
    # As DRF's DateTimeField writes it in job-status.
    return instant.isoformat().replace("+00:00", "Z")


@extend_schema_field(
    {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 1000}
)
class MessagesField(serializers.Field):
    """A non-empty list of at most BATCH_MAX_MESSAGES; each item is checked apart."""

    def to_internal_value(self, data):
        from django.conf import settings

        if not isinstance(data, list):
            raise serializers.ValidationError("Must be a list of messages.")
        if not data:
            raise serializers.ValidationError("Must contain at least one message.")
        if len(data) > settings.BATCH_MAX_MESSAGES:
            raise serializers.ValidationError(
                f"At most {settings.BATCH_MAX_MESSAGES} messages per request "
                f"(BATCH_MAX_MESSAGES); got {len(data)}."
            )
        return data


@extend_schema_field({"type": "boolean", "default": False})
class ScheduleBatchInput(serializers.Serializer):
    messages = MessagesField()
    atomic = StrictBooleanField(required=False, default=False)


class BatchResultOutput(serializers.Serializer):
    index = serializers.IntegerField()
    jobId = serializers.UUIDField(required=False)
    scheduledFor = serializers.DateTimeField(required=False)
    replayed = serializers.BooleanField(required=False)
    # Only when the message's sendAt was already past: it is sent at once.
    sendAtInPast = serializers.BooleanField(required=False)
    # Only for a job held by a paused campaign or workspace.
    status = serializers.ChoiceField(choices=["paused"], required=False)
    paused = HeldOutput(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ScheduleBatchOutput(serializers.Serializer):
    success = serializers.BooleanField()
    scheduled = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BatchResultOutput(many=True)


class ScheduleBatchRefusedOutput(serializers.Serializer):
    """400: nothing scheduled (with `results`), or a body that is not a batch."""

    success = serializers.BooleanField()
    error = serializers.CharField()
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField())
    )
    scheduled = serializers.IntegerField(required=False)
    failed = serializers.IntegerField(required=False)
    results = BatchResultOutput(many=True, required=False)
