"""The hot endpoints' validation and answers, without a serializer per request.

Validation runs the endpoint's own input serializer (the one the schema is built
from, the one source of the rules), one instance per class reused: instantiating
it copies and binds every field, more than the validation itself costs. A body it
plainly accepts is checked by queueservices.quickcheck from the same rules.

The answers are written field by field as ScheduleOutput and JobStatusOutput
write them (the published shapes): tests/test_lean_api.py compares the two on
jobs of every kind, so a field added to one and not the other fails there.
"""

from datetime import UTC, datetime

from rest_framework.exceptions import ValidationError

from jobs.models import Job, JobAttempt
from jobs.sendtime import dst_rule_of, local_iso
from queueservices.quickcheck import quick_validated
from queueservices.serializers import held_fields, send_at_in_past

_forms: dict[type, object] = {}


def validated(form_class: type, data) -> dict:
    """`data` validated by `form_class` (a Serializer), or its ValidationError:
    the same checks, messages and order as form_class(data=data).is_valid()."""
    form = _forms.get(form_class)
    if form is None:
        # Fields are only read while validating: one instance serves every thread.
        form = _forms[form_class] = form_class()
    quick = quick_validated(form, data)
    if quick is not None:
        return quick
    try:
        return form.run_validation(data)
    except ValidationError:
        # Errors are rare: let is_valid word them (it words a null body apart).
        form_class(data=data).is_valid(raise_exception=True)
        raise


def iso(instant: datetime | None) -> str | None:
    """As DRF's DateTimeField writes an aware datetime (in UTC, 'Z')."""
    if instant is None:
        return None
    text = instant.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def schedule_answer(job: Job, message: str) -> dict:
    """ScheduleOutput(job, context={"message": message}).data."""
    body = {
        "success": True,
        "jobId": str(job.id),
        "message": message,
        "scheduledFor": iso(job.due_at),
        "scheduledForLocal": local_iso(job.due_at, job.timezone),
        "timezone": job.timezone or None,
    }
    payload = job.payload if isinstance(job.payload, dict) else {}
    dst = dst_rule_of(payload.get("sendAt"), job.timezone)
    if dst:
        body["dst"] = dst
    if job.deferred_reason and job.requested_for is not None:
        body["deferred"] = {
            "reason": job.deferred_reason,
            "requestedFor": iso(job.requested_for),
            "requestedForLocal": local_iso(job.requested_for, job.timezone),
        }
    if send_at_in_past(job):
        body["sendAtInPast"] = True
    body.update(held_fields(job))
    return body


def job_status_answer(job: Job, attempts: list[JobAttempt]) -> dict:
    """{"success": True, **JobStatusOutput(job).data}, given job.attempt_log."""
    return {
        "success": True,
        "jobId": str(job.id),
        "type": _text(job.type),
        "status": _text(job.status),
        "queue": _text(job.queue),
        "attempts": _int(job.attempts),
        "maxAttempts": _int(job.max_attempts),
        "workspaceId": _text(job.workspace_id),
        "contactId": _text(job.contact_id),
        "callbackUrl": _text(job.callback_url),
        "scheduledFor": iso(job.scheduled_for),
        "scheduledForLocal": local_iso(job.scheduled_for, job.timezone),
        "requestedFor": iso(job.requested_for),
        "dueAt": iso(job.due_at),
        "timezone": job.timezone or None,
        "deferredReason": job.deferred_reason or None,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "finishedAt": iso(job.finished_at),
        "lastError": job.last_error or None,
        "lastHttpStatus": _int(job.last_http_status),
        "deliveryAttempts": [_attempt(attempt) for attempt in attempts],
        "webhookStatus": _text(job.webhook_status),
        "webhookAttempts": _int(job.webhook_attempts),
    }


def _attempt(attempt) -> dict:
    return {
        "attempt": _int(attempt.number),
        "startedAt": iso(attempt.started_at),
        "durationMs": _int(attempt.duration_ms),
        "httpStatus": _int(attempt.http_status),
        "error": _text(attempt.error),
        "succeeded": None if attempt.succeeded is None else bool(attempt.succeeded),
    }


# DRF's CharField and IntegerField, None kept as None.
def _text(value) -> str | None:
    return None if value is None else str(value)


def _int(value) -> int | None:
    return None if value is None else int(value)
