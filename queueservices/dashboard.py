"""The operator dashboard at /admin/queues: queues, jobs, and actions on them."""

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from jobs import services, stats
from jobs.broker import live_workers
from jobs.models import AuditEntry, Job, PausedScope
from jobs.search import search_jobs
from queueservices.access import dashboard_required

STATUSES = [s.value for s in Job.Status]
ACTIONS = {
    "retry": services.job_retry,
    "remove": services.job_cancel,
    "promote": services.job_promote,
}


@dashboard_required
def overview(request):
    counts = stats.queue_counts(settings.QUEUE_NAMES)
    try:
        workers = live_workers()
    except RedisError:
        workers = None
    context = {
        "queues": [(name, [(s, counts[name][s]) for s in STATUSES]) for name in counts],
        "statuses": STATUSES,
        "stats": stats.last_hour(),
        "workers": workers,
        "audit": AuditEntry.objects.select_related("job")[:10],
        # Campaigns and workspaces whose new jobs are held (a handful of rows).
        "pauses": PausedScope.objects.all()[:50],
    }
    return render(request, "dashboard/overview.html", context)


@dashboard_required
def job_list(request):
    jobs = Job.objects.order_by("-created_at")
    queue, status = request.GET.get("queue", ""), request.GET.get("status", "")
    if queue:
        jobs = jobs.filter(queue=queue)
    if status:
        jobs = jobs.filter(status=status)
    jobs = search_jobs(jobs, request.GET.get("q", ""))
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "queue": queue,
        "status": status,
        "q": request.GET.get("q", ""),
    }
    context.update(queue_names=settings.QUEUE_NAMES, statuses=STATUSES)
    return render(request, "dashboard/job_list.html", context)


@dashboard_required
def job_detail(request, job_id):
    job = get_object_or_404(Job.objects.prefetch_related("attempt_log"), pk=job_id)
    context = {
        "job": job,
        "history": _history(job),
        "payload_json": json.dumps(job.payload, indent=2, ensure_ascii=False),
        "metadata_json": json.dumps(job.metadata, indent=2, ensure_ascii=False),
    }
    return render(request, "dashboard/job_detail.html", context)


@require_POST
@dashboard_required
def job_action(request, job_id, action):
    if action not in ACTIONS:
        raise Http404("No such action.")
    try:
        ACTIONS[action](job_id=job_id, actor=request.dashboard_actor)
        messages.success(request, f"Job {action}: done.")
    except (services.IllegalTransition, services.QueueUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect("dashboard-job", job_id=job_id)


@require_POST
@dashboard_required
def queue_action(request, queue, action):
    if queue not in settings.QUEUE_NAMES:
        raise Http404("No such queue.")
    actor = request.dashboard_actor
    try:
        if action == "retry-failed":
            count = services.jobs_retry_failed(queue=queue, actor=actor)
        elif action == "clean-completed":
            hours = _positive_int(request.POST.get("older_than_hours"), default=24)
            older_than = timedelta(hours=hours)
            count = services.jobs_clean_completed(
                queue=queue, older_than=older_than, actor=actor
            )
        else:
            raise Http404("No such action.")
        messages.success(request, f"{queue}: {action} affected {count} job(s).")
    except services.QueueUnavailable as exc:
        messages.error(request, str(exc))
    return redirect("dashboard")


def _positive_int(raw, default: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return value if value >= 0 else default


def _history(job: Job) -> list[tuple]:
    """Status history as (time, event), from the row, its attempts and the audit log."""
    events = [
        (
            job.created_at,
            f"created as {job.queue}, due {job.due_at:%Y-%m-%d %H:%M:%S.%f} UTC",
        )
    ]
    for attempt in job.attempt_log.all():
        outcome = "succeeded" if attempt.succeeded else f"failed: {attempt.error}"
        events.append((attempt.started_at, f"attempt {attempt.number} {outcome}"))
    for entry in job.auditentry_set.all():
        events.append((entry.at, f"{entry.action} by {entry.actor}"))
    if job.finished_at:
        events.append((job.finished_at, job.status))
    return sorted(events, key=lambda event: event[0])


@dashboard_required
def not_found(request):
    raise Http404("No such dashboard page.")
