"""/test-email and /test-sms: schedule a message by hand, through the same
validation and service as the API."""

import json

from django.conf import settings
from django.shortcuts import render
from rest_framework.exceptions import ErrorDetail

from jobs.models import Job
from jobs.services import QueueUnavailable, job_schedule
from queueservices.access import dashboard_required
from queueservices.serializers import ScheduleEmailInput, ScheduleSmsInput

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
    ("delay", "Delay (ms)", "number"),
]
INPUTS = {Job.Type.EMAIL: ScheduleEmailInput, Job.Type.SMS: ScheduleSmsInput}
MESSAGES = {
    Job.Type.EMAIL: "Email scheduled successfully",
    Job.Type.SMS: "SMS scheduled successfully",
}


def _test_page(request, job_type: str):
    values = {
        name: request.POST.get(name, "") for name, _, _ in FIELDS[job_type] + COMMON
    }
    values["delay"] = values["delay"] or "0"
    errors, result = {}, None
    if request.method == "POST":
        payload = {**values, "delay": _as_int(values["delay"])}
        serializer = INPUTS[job_type](data=payload)
        if serializer.is_valid():
            try:
                job, _ = job_schedule(
                    job_type=job_type,
                    payload=payload,
                    delay_ms=serializer.validated_data["delay"],
                )
                result = {
                    "success": True,
                    "jobId": str(job.id),
                    "message": MESSAGES[job_type],
                }
            except QueueUnavailable:
                errors = {"__all__": ["The queue is unavailable right now; try again."]}
        else:
            errors = {
                k: [str(m) for m in _messages(v)] for k, v in serializer.errors.items()
            }
    fields = [
        (name, label, kind, values.get(name, ""), errors.get(name, []))
        for name, label, kind in FIELDS[job_type] + COMMON
    ]
    context = {
        "job_type": job_type,
        "fields": fields,
        "form_errors": errors.get("__all__", []),
        "result": result,
        "result_json": json.dumps(result, indent=2) if result else "",
    }
    return render(
        request, "testpages/form.html", context, status=400 if errors else 200
    )


def _as_int(raw: str):
    try:
        return int(raw)
    except ValueError:
        return raw  # the serializer reports it as not a whole number


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
