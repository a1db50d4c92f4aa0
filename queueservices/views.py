import uuid

from django.db import connection
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.models import Job
from jobs.queues import redis_connection
from jobs.services import job_schedule
from queueservices.serializers import (
    JobStatusOutput,
    ScheduleEmailInput,
    ScheduleSmsInput,
)


class ScheduleView(APIView):
    input_serializer: type
    job_type: str
    success_message: str

    def post(self, request):
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = job_schedule(
            job_type=self.job_type,
            payload=request.data,
            delay_ms=serializer.validated_data["delay"],
        )
        return Response(
            {"success": True, "jobId": str(job.id), "message": self.success_message}
        )


class ScheduleSmsView(ScheduleView):
    input_serializer = ScheduleSmsInput
    job_type = Job.Type.SMS
    success_message = "SMS scheduled successfully"


class ScheduleEmailView(ScheduleView):
    input_serializer = ScheduleEmailInput
    job_type = Job.Type.EMAIL
    success_message = "Email scheduled successfully"


class JobStatusView(APIView):
    def get(self, request, job_id: str):
        try:
            job = Job.objects.prefetch_related("attempt_log").get(pk=uuid.UUID(job_id))
        except (ValueError, Job.DoesNotExist):
            raise NotFound(f"No job with id {job_id!r}.") from None
        return Response({"success": True, **JobStatusOutput(job).data})


class HealthView(APIView):
    """200 when the database and Redis answer, 503 otherwise (for load balancers)."""

    def get(self, request):
        checks = {"database": _check(lambda: connection.ensure_connection())}
        checks["redis"] = _check(lambda: redis_connection().ping())
        healthy = all(value == "ok" for value in checks.values())
        return Response({"success": healthy, **checks}, status=200 if healthy else 503)


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return f"error: {type(exc).__name__}"
    return "ok"
