"""Job control over the API: cancel, reschedule, pause, resume, list.

One job: /api/jobs/{jobId} (GET, PATCH, DELETE). Every pending job of a campaign
or a workspace: POST /api/{campaigns|workspaces}/{id}/{cancel|pause|resume|
reschedule}. A key limited to one workspace acts only on that workspace's jobs.
"""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.models import Job
from jobs.sendtime import SendTimeError
from jobs.services import (
    IllegalTransition,
    NewTime,
    job_cancel,
    job_reschedule,
    jobs_cancel,
    jobs_pause,
    jobs_reschedule,
    jobs_resume,
)
from queueservices import plain
from queueservices.auth import check_workspace
from queueservices.control_serializers import (
    BulkRescheduleInput,
    CountsOutput,
    JobListOutput,
    JobListQuery,
    JobOutput,
    JobResultOutput,
    RescheduleInput,
    encode_cursor,
)
from queueservices.serializers import MAX_ID_LENGTH, ErrorOutput
from queueservices.views import JobStatusView

ERRORS = {status: ErrorOutput for status in (400, 401, 403, 404, 409, 413, 415, 503)}
BULK = {"cancel": jobs_cancel, "pause": jobs_pause, "resume": jobs_resume}


class Conflict(APIException):
    status_code = 409
    default_detail = "The job is not in a state that allows this."


def actor(request) -> str:
    """Who to name in the audit log: the API key's prefix when there is one."""
    return f"api:{request.auth.prefix}" if request.auth is not None else "api"


def key_workspace(request) -> str | None:
    return (request.auth.workspace_id or None) if request.auth is not None else None


def job_or_404(request, job_id: str) -> Job:
    try:
        job = Job.objects.get(pk=plain.job_uuid(job_id))
    except (ValueError, Job.DoesNotExist):
        raise NotFound(f"No job with id {job_id!r}.") from None
    check_workspace(request, job.workspace_id)
    return job


def valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def new_time(data: dict) -> NewTime:
    return NewTime(
        delay_ms=data.get("delay"),
        send_at=data.get("sendAt"),
        tz_name=data.get("timezone"),
        shift_ms=data.get("shiftMs"),
    )


@extend_schema(tags=["Jobs"])
class JobView(JobStatusView):
    """GET is job-status; PATCH reschedules; DELETE cancels."""

    @extend_schema(request=RescheduleInput, responses={200: JobResultOutput, **ERRORS})
    def patch(self, request, job_id: str):
        job = job_or_404(request, job_id)
        when = new_time(valid(RescheduleInput, request.data))
        try:
            job = job_reschedule(job_id=job.pk, when=when, actor=actor(request))
        except SendTimeError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        return Response({"success": True, **JobOutput(job).data})

    @extend_schema(request=None, responses={200: JobResultOutput, **ERRORS})
    def delete(self, request, job_id: str):
        job = job_or_404(request, job_id)
        try:
            job = job_cancel(job_id=job.pk, actor=actor(request))
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        return Response({"success": True, **JobOutput(job).data})


class ScopeView(APIView):
    """Acts on the pending jobs of one campaign or workspace (`scope`)."""

    scope = "campaign"
    action = "cancel"

    def filters(self, request, scope_id: str) -> dict:
        # A NUL would reach PostgreSQL as an error (a 500), not as "no jobs".
        if "\x00" in scope_id or len(scope_id) > MAX_ID_LENGTH:
            message = f"Must be at most {MAX_ID_LENGTH} characters, without NUL."
            raise ValidationError({f"{self.scope}Id": [message]})
        if self.scope == "workspace":
            check_workspace(request, scope_id)
            return {"workspace_id": scope_id}
        return {"campaign_id": scope_id, "workspace_id": key_workspace(request)}

    def respond(self, counts) -> Response:
        body = {"success": True, "changed": counts.changed, "skipped": counts.skipped}
        return Response(body)


def scope_parameter(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.PATH)


class BulkActionView(ScopeView):
    def post(self, request, **kwargs):
        service = BULK[self.action]
        filters = self.filters(request, kwargs[f"{self.scope}_id"])
        return self.respond(service(**filters, actor=actor(request)))


class BulkRescheduleView(ScopeView):
    action = "reschedule"

    def post(self, request, **kwargs):
        filters = self.filters(request, kwargs[f"{self.scope}_id"])
        when = new_time(valid(BulkRescheduleInput, request.data))
        try:
            counts = jobs_reschedule(**filters, when=when, actor=actor(request))
        except SendTimeError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return self.respond(counts)


def _scoped(view_class, scope: str, action: str, request):
    """The view for one /api/{scope}s/{id}/{action} route, documented."""
    schema = extend_schema(
        tags=[f"{scope.capitalize()}s"],
        request=request,
        responses={200: CountsOutput, **ERRORS},
        parameters=[scope_parameter(f"{scope}_id")],
        summary=f"{action.capitalize()} every pending job of a {scope}",
    )
    name = f"{scope.capitalize()}{action.capitalize()}View"
    return schema(type(name, (view_class,), {"scope": scope, "action": action}))


SCOPE_VIEWS = {
    (scope, action): _scoped(BulkActionView, scope, action, None)
    for scope in ("campaign", "workspace")
    for action in BULK
} | {
    (scope, "reschedule"): _scoped(
        BulkRescheduleView, scope, "reschedule", BulkRescheduleInput
    )
    for scope in ("campaign", "workspace")
}


@extend_schema(tags=["Jobs"])
class JobListView(APIView):
    @extend_schema(
        operation_id="api_jobs_list",
        parameters=[JobListQuery],
        responses={200: JobListOutput, **ERRORS},
    )
    def get(self, request):
        query = valid(JobListQuery, request.query_params)
        jobs = Job.objects.all()
        if query.get("workspaceId") is not None:
            check_workspace(request, query["workspaceId"])
            jobs = jobs.filter(workspace_id=query["workspaceId"])
        if key_workspace(request):
            jobs = jobs.filter(workspace_id=key_workspace(request))
        if query.get("campaignId") is not None:
            jobs = jobs.filter(campaign_id=query["campaignId"])
        if query.get("status"):
            jobs = jobs.filter(status=query["status"])
        count = jobs.count()
        if query.get("cursor"):
            created_at, last_id = query["cursor"]
            jobs = jobs.filter(
                Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=last_id)
            )
        limit = query["limit"]
        page = list(jobs.order_by("-created_at", "-id")[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {
                "success": True,
                "count": count,
                "jobs": JobOutput(page, many=True).data,
                "nextCursor": encode_cursor(page[-1]) if more else None,
            }
        )
