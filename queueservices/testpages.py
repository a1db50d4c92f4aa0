"""/test-email and /test-sms: schedule a message by hand, through the same
validation and service as the API."""

import json

from django.conf import settings
from django.shortcuts import render
from rest_framework.exceptions import ErrorDetail, ValidationError

from jobs.models import Job
from jobs.services import QueueUnavailable, job_schedule
from queueservices import plain
from queueservices.access import dashboard_required
from queueservices.serializers import (
    ScheduleEmailInput,
    ScheduleOutput,
    ScheduleSmsInput,
)

FIELDS = {
    Job.Type.EMAIL: [
        ("to", "Recipient email", "email"),
        ("subject", "Subject", "text"),
        ("html", "HTML content", "textarea"),
    ],
    Job.Type.SMS: [
        ("phoneNumber", "Phone number (E.164)", "text"),
        ("message", "Message", "textarea"),
    ],
}
COMMON = [
    ("contactId", "Contact ID", "text"),
    ("workspaceId", "Workspace ID", "text"),
    ("delay", "Delay (ms, empty = now)", "number"),
    ("sendAt", "Or send at (ISO-8601, e.g. 2026-12-01T09:00:00)", "text"),
    ("timezone", "Time zone (IANA, e.g. America/New_York)", "text"),
]
# Left out of the request when empty: the form always posts every field.
OPTIONAL = {"delay", "sendAt", "timezone"}
INPUTS = {Job.Type.EMAIL: ScheduleEmailInput, Job.Type.SMS: ScheduleSmsInput}
MESSAGES = {
    Job.Type.EMAIL: "Email scheduled successfully",
    Job.Type.SMS: "SMS scheduled successfully",
}


def _test_page(request, job_type: str):
    values = {
        name: request.POST.get(name, "") for name, _, _ in FIELDS[job_type] + COMMON
    }
    errors, result = {}, None
    if request.method == "POST":
        try:
            result = _schedule(job_type, values)
        except ValidationError as exc:
            errors = {k: [str(m) for m in _messages(v)] for k, v in exc.detail.items()}
        except QueueUnavailable:
            errors = {"__all__": ["The queue is unavailable right now; try again."]}
    fields = [
        (name, label, kind, values.get(name, ""), errors.get(name, []))
        for name, label, kind in FIELDS[job_type] + COMMON
    ]
    context = {
        "job_type": job_type,
        "fields": fields,
        # Errors of fields the form has no box for (workspace.timezone...).
        "form_errors": [
            message
            for name, messages in errors.items()
            if name not in values
            for message in messages
        ],
        "result": result,
        "result_json": json.dumps(result, indent=2) if result else "",
    }
    return render(
        request, "testpages/form.html", context, status=400 if errors else 200
    )


def _schedule(job_type: str, values: dict) -> dict:
    """What the API would do and answer for the form's values."""
    payload = {k: v for k, v in values.items() if k not in OPTIONAL or v}
    if "delay" in payload:
        payload["delay"] = _as_int(payload["delay"])
    elif "sendAt" not in payload:
        payload["delay"] = 0  # an empty form means now, as before
    serializer = INPUTS[job_type](data=payload)
    serializer.is_valid(raise_exception=True)
    job, _ = job_schedule(
        job_type=job_type, payload=payload, plan=serializer.send_plan()
    )
    output = ScheduleOutput(job, context={"message": MESSAGES[job_type]})
    return output.data


def _as_int(raw: str):
    number = plain.whole_number(raw)
    # Else the serializer reports it as not a whole number.
    return raw if number is None else number


def _messages(detail) -> list:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, (list, tuple)):
        return [m for item in detail for m in _messages(item)]
    return [detail] if isinstance(detail, (str, ErrorDetail)) else []


def _open_in_debug(view):
    """The test pages are open while DEBUG is on, behind the dashboard otherwise."""
    guarded = dashboard_required(view)

    def dispatch(request, *args, **kwargs):
        target = view if settings.DEBUG else guarded
        return target(request, *args, **kwargs)

    return dispatch


@_open_in_debug
def test_email(request):
    return _test_page(request, Job.Type.EMAIL)


@_open_in_debug
def test_sms(request):
    return _test_page(request, Job.Type.SMS)
