"""Input and output shapes of the job-control API (cancel, pause, resume,
reschedule, list)."""

import base64
import binascii
import uuid
from datetime import datetime

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job
from queueservices import plain
from queueservices.serializers import MAX_ID_LENGTH, JobStatusOutput, StrictCharField

MAX_PAGE = 500


@extend_schema_field({"type": "integer", "nullable": True})
class WholeMsField(serializers.Field):
    """Milliseconds as a whole number, at most MAX_DELAY_MS away from zero."""

    def __init__(self, *, negative: bool = False, **kwargs):
        self.negative = negative
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        is_whole_float = isinstance(data, float) and data.is_integer()
        if isinstance(data, bool) or not (isinstance(data, int) or is_whole_float):
            raise serializers.ValidationError("Must be a whole number of milliseconds.")
        if data < 0 and not self.negative:
            raise serializers.ValidationError("Must not be negative.")
        if abs(data) > settings.MAX_DELAY_MS:
            raise serializers.ValidationError(
                f"Must be at most {settings.MAX_DELAY_MS} ms (MAX_DELAY_MS)."
            )
        return int(data)


class QueryIntegerField(serializers.IntegerField):
    """An integer from the query string in ASCII digits only: DRF's IntegerField
    calls int(), which reads "٥٠" as 50 and takes " 5", "5.0" and "1_0"."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            number = plain.whole_number(data)
            if number is None:
                self.fail("invalid")
            data = number
        return super().to_internal_value(data)


def _given(attrs, *names) -> list[str]:
    return [name for name in names if attrs.get(name) is not None]


class RescheduleInput(serializers.Serializer):
    """A new due time: delay (ms from now) or sendAt, optionally in a timezone."""

    delay = WholeMsField(help_text="Milliseconds from now.")
    sendAt = StrictCharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="ISO-8601; without an offset it is local time in `timezone` "
        "(or the workspace's).",
    )
    timezone = StrictCharField(required=False, allow_null=True, max_length=64)
    choices = ("delay", "sendAt")

    def validate(self, attrs):
        given = _given(attrs, *self.choices)
        if len(given) != 1:
            raise serializers.ValidationError(
                f"Give exactly one of {', '.join(self.choices)}."
            )
        if attrs.get("timezone") is not None and given == ["shiftMs"]:
            raise serializers.ValidationError(
                {"timezone": ["Only with delay or sendAt."]}
            )
        return attrs


class BulkRescheduleInput(RescheduleInput):
    shiftMs = WholeMsField(
        negative=True,
        help_text="Move each job by this many ms (negative: earlier, never before "
        "now).",
    )
    choices = ("delay", "sendAt", "shiftMs")


class JobOutput(JobStatusOutput):
    """job-status without the attempts."""

    deliveryAttempts = None


class JobResultOutput(JobOutput):
    success = serializers.BooleanField()


class CountsOutput(serializers.Serializer):
    success = serializers.BooleanField()
    changed = serializers.IntegerField(help_text="Jobs moved to the new state.")
    skipped = serializers.IntegerField(
        help_text="Matching jobs being delivered at that moment: left alone."
    )


class JobListQuery(serializers.Serializer):
    campaignId = StrictCharField(required=False, max_length=MAX_ID_LENGTH)
    workspaceId = StrictCharField(required=False, max_length=MAX_ID_LENGTH)
    status = serializers.ChoiceField(choices=Job.Status.values, required=False)
    limit = QueryIntegerField(min_value=1, max_value=MAX_PAGE, default=50)
    cursor = serializers.CharField(
        required=False, max_length=200, help_text="nextCursor of the previous page."
    )

    def validate_cursor(self, value) -> tuple[datetime, uuid.UUID]:
        try:
            return decode_cursor(value)
        except ValueError:
            raise serializers.ValidationError(
                "Not a cursor from this API: pass nextCursor as it came."
            ) from None


class JobListOutput(serializers.Serializer):
    success = serializers.BooleanField()
    count = serializers.IntegerField(help_text="All jobs matching the filters.")
    jobs = JobOutput(many=True)
    nextCursor = serializers.CharField(allow_null=True)


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of the last job of the previous page; ValueError if bad."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    created, _, job_id = raw.partition("|")
    created_at = datetime.fromisoformat(created)
    if created_at.tzinfo is None:
        raise ValueError("naive time")
    return created_at, plain.job_uuid(job_id)
