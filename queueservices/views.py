from django.db import connection
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import broker
from jobs.lookups import job_with_attempts
from jobs.models import Job
from jobs.services import job_schedule, jobs_schedule_batch
from queueservices import plain
from queueservices.answers import job_status_answer, schedule_answer, validated
from queueservices.auth import check_workspace
from queueservices.batch_endpoint import (
    ScheduleBatchInput,
    ScheduleBatchOutput,
    ScheduleBatchRefusedOutput,
    batch_body,
    validate_messages,
)
from queueservices.lean import LeanAPIView
from queueservices.parsers import BatchJSONParser
from queueservices.serializers import (
    ErrorOutput,
    JobStatusOutput,
    ScheduleEmailInput,
    ScheduleOutput,
    ScheduleSmsInput,
    clean_idempotency_key,
    send_plan_for,
)

ERRORS = {status: ErrorOutput for status in (400, 401, 403, 409, 413, 415, 503)}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Repeat a request safely: the same key returns the same job for 24 h.",
)


class ScheduleView(LeanAPIView):
    """Schedule one message: at its due time (now, after `delay` ms, or at `sendAt`)
    it is POSTed to your backend. Answers at once with the job's id and due time."""

    input_serializer: type
    job_type: str
    success_message: str

    def post(self, request):
        data = validated(self.input_serializer, request.data)
        check_workspace(request, data["workspaceId"])
        job, replayed = job_schedule(
            job_type=self.job_type,
            payload=request.data,
            plan=send_plan_for(data),
            idempotency_key=idempotency_key(request, data),
        )
        # ScheduleOutput's fields, without a serializer per request.
        body = schedule_answer(job, self.success_message)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return Response(body, headers=headers)


def idempotency_key(request, data) -> str | None:
    """The Idempotency-Key header, else metadata.idempotencyKey."""
    metadata = data.get("metadata") or {}
    key = request.headers.get("Idempotency-Key") or metadata.get("idempotencyKey")
    return clean_idempotency_key(key)


@extend_schema(
    tags=["Scheduling"],
    request=ScheduleSmsInput,
    responses={200: ScheduleOutput, **ERRORS},
    parameters=[IDEMPOTENCY_HEADER],
)
class ScheduleSmsView(ScheduleView):
    input_serializer = ScheduleSmsInput
    job_type = Job.Type.SMS
    success_message = "SMS scheduled successfully"


@extend_schema(
    tags=["Scheduling"],
    request=ScheduleEmailInput,
    responses={200: ScheduleOutput, **ERRORS},
    parameters=[IDEMPOTENCY_HEADER],
)
class ScheduleEmailView(ScheduleView):
    input_serializer = ScheduleEmailInput
    job_type = Job.Type.EMAIL
    success_message = "Email scheduled successfully"


@extend_schema(
    tags=["Scheduling"],
    request=ScheduleBatchInput,
    responses={**ERRORS, 200: ScheduleBatchOutput, 400: ScheduleBatchRefusedOutput},
)
class ScheduleBatchView(APIView):
    """Many SMS and emails: each scheduled or refused on its own (unless atomic)."""

    parser_classes = [BatchJSONParser]

    def post(self, request):
        if "Idempotency-Key" in request.headers:
            message = "Give each message its own metadata.idempotencyKey instead."
            raise ValidationError({"idempotencyKey": [message]})
        serializer = ScheduleBatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        items, refused = validate_messages(enumerate(data["messages"]), request=request)
        results = jobs_schedule_batch(
            items=items, refused=refused, atomic=data["atomic"]
        )
        body = batch_body(results)
        return Response(body, status=200 if body["success"] else 400)


@extend_schema(tags=["Jobs"])
class JobStatusView(LeanAPIView):
    """One job: its status, when it is due, and every delivery attempt so far."""

    @extend_schema(
        responses={
            200: JobStatusOutput,
            404: ErrorOutput,
            401: ErrorOutput,
            403: ErrorOutput,
        }
    )
    def get(self, request, job_id: str):
        try:
            found = job_with_attempts(plain.job_uuid(job_id))
        except ValueError:
            found = None
        if found is None:
            raise NotFound(f"No job with id {job_id!r}.")
        job, attempts = found
        check_workspace(request, job.workspace_id)
        # JobStatusOutput's fields, without a serializer per request.
        return Response(job_status_answer(job, attempts))


@extend_schema(exclude=True)
class HealthView(APIView):
    """200 when the database and Redis answer, 503 otherwise (for load balancers)."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        checks = {"database": _check(lambda: connection.ensure_connection())}
        checks["redis"] = _check(broker.ping)
        healthy = all(value == "ok" for value in checks.values())
        return Response({"success": healthy, **checks}, status=200 if healthy else 503)


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return f"error: {type(exc).__name__}"
    return "ok"
