"""The operator dashboard at /admin/queues: queues, jobs, and actions on them.

The overview and the job list refresh themselves (htmx polls the same URL and
swaps the part marked #live); actions that delete or touch many jobs first answer
a page that says what they will touch, with counts, and act on its Confirm.
"""

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from jobs import broker, services, stats
from jobs.admin import CappedCountPaginator
from jobs.models import AuditEntry, Job, PausedScope
from jobs.queues import DELIVERY_QUEUES
from jobs.search import search_jobs
from queueservices import plain
from queueservices.access import dashboard_required

STATUSES = [s.value for s in Job.Status]
FINISHED = {Job.Status.COMPLETED, Job.Status.FAILED, Job.Status.CANCELLED}
# How old the live refresh's counts of finished jobs may be (jobs.stats).
FINISHED_COUNTS_S = 10
ACTIONS = {
    "retry": services.job_retry,
    "remove": services.job_cancel,
    "delete": services.job_remove,
    "promote": services.job_promote,
}
# Sortable columns of the job list: ?sort=<key> or -<key>, each served by an index
# (jobs.models.Job.Meta). By finish time only within a finished status (the
# status_finished index): an index of its own would cost every finish a write.
SORTS = {
    "created": ("created_at", "id"),
    "scheduled": ("scheduled_for", "id"),
    "finished": ("finished_at", "id"),
}


@dashboard_required
def overview(request):
    # The live refresh (htmx, every 2 s) may show finished counts up to
    # FINISHED_COUNTS_S old; a page load counts everything afresh.
    live = request.headers.get("HX-Request") == "true"
    counts = stats.queue_counts(
        settings.QUEUE_NAMES, finished_max_age_s=FINISHED_COUNTS_S if live else 0
    )
    try:
        workers, paused = broker.live_workers(), broker.paused_queues()
    except RedisError:
        workers, paused = None, set()
    per_worker = stats.per_worker_last_hour()
    context = {
        "queues": [_queue_row(name, counts[name], paused) for name in counts],
        "statuses": STATUSES,
        "cleanable": services.CLEANABLE_STATUSES,
        "delayed": sum(c[Job.Status.DELAYED] for c in counts.values()),
        "stats": stats.last_hour(),
        "chart": stats.chart(),
        "workers": [(w, per_worker.get(w.name, {})) for w in workers or []],
        "redis_down": workers is None,
        "audit": AuditEntry.objects.select_related("job")[:10],
        # Campaigns and workspaces whose new jobs are held (a handful of rows).
        "pauses": PausedScope.objects.all()[:50],
    }
    return render(request, "dashboard/overview.html", context)


def _queue_row(name: str, counts: dict, paused: set[str]) -> dict:
    return {
        "name": name,
        "counts": [(s, counts[s]) for s in STATUSES],
        "failed": counts[Job.Status.FAILED],
        "cleanable": any(counts[s] for s in services.CLEANABLE_STATUSES),
        "pausable": name in DELIVERY_QUEUES,
        "paused": name in paused,
    }


@dashboard_required
def job_list(request):
    queue, status = request.GET.get("queue", ""), request.GET.get("status", "")
    sort = request.GET.get("sort", "-created")
    fields = SORTS.get(sort.removeprefix("-"))
    if fields is None or (fields == SORTS["finished"] and status not in FINISHED):
        sort, fields = "-created", SORTS["created"]
    order = [f"-{f}" if sort.startswith("-") else f for f in fields]
    jobs = Job.objects.order_by(*order)
    if queue:
        jobs = jobs.filter(queue=queue)
    if status:
        jobs = jobs.filter(status=status)
    jobs = search_jobs(jobs, request.GET.get("q", ""))
    page = CappedCountPaginator(jobs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "queue": queue,
        "status": status,
        "sort": sort,
        "finished": status in FINISHED,
        "q": request.GET.get("q", ""),
    }
    context.update(queue_names=settings.QUEUE_NAMES, statuses=STATUSES)
    return render(request, "dashboard/job_list.html", context)


@dashboard_required
def job_detail(request, job_id):
    job = get_object_or_404(Job.objects.prefetch_related("attempt_log"), pk=job_id)
    # The request's metadata is shown once, under its own heading.
    payload = {k: v for k, v in job.payload.items() if k != "metadata"}
    context = {
        "job": job,
        "history": _history(job),
        "finished": job.status in FINISHED,
        "payload_json": json.dumps(payload, indent=2, ensure_ascii=False),
        "metadata_json": json.dumps(job.metadata, indent=2, ensure_ascii=False),
    }
    return render(request, "dashboard/job_detail.html", context)


@require_POST
@dashboard_required
def job_action(request, job_id, action):
    if action not in ACTIONS:
        raise Http404("No such action.")
    if action in ("remove", "delete") and not request.POST.get("confirmed"):
        job = get_object_or_404(Job, pk=job_id)
        return _confirm(request, _job_warning(job, action), back=job_detail_url(job))
    try:
        ACTIONS[action](job_id=job_id, actor=request.dashboard_actor)
        messages.success(request, f"Job {action}: done.")
    except (services.IllegalTransition, services.QueueUnavailable) as exc:
        messages.error(request, str(exc))
        return redirect("dashboard-job", job_id=job_id)
    if action == "delete":
        return redirect("dashboard-jobs")
    return redirect("dashboard-job", job_id=job_id)


def job_detail_url(job: Job) -> str:
    return f"/admin/queues/jobs/{job.id}"


def _job_warning(job: Job, action: str) -> str:
    if action == "remove":
        return (
            f"Cancel job {job.id} ({job.status}, queue {job.queue}): it will not "
            "be delivered. 1 job is touched."
        )
    return (
        f"Delete job {job.id} ({job.status}, queue {job.queue}) with its "
        f"{job.attempt_log.count()} attempt(s) and what Redis holds of it. "
        "1 job is deleted; this cannot be undone."
    )


@require_POST
@dashboard_required
def queue_action(request, queue, action):
    if queue not in settings.QUEUE_NAMES:
        raise Http404("No such queue.")
    actor = request.dashboard_actor
    try:
        if action in ("pause", "resume"):
            service = (
                services.queue_pause if action == "pause" else services.queue_resume
            )
            changed = service(queue=queue, actor=actor)
            done = "paused" if action == "pause" else "resumed"
            messages.success(request, f"{queue}: {done if changed else 'unchanged'}.")
        elif action == "retry-failed":
            return _retry_failed(request, queue, actor)
        elif action == "clean":
            return _clean(request, queue, request.POST.get("status", ""), actor)
        elif action.startswith("clean-"):
            return _clean(request, queue, action.removeprefix("clean-"), actor)
        else:
            raise Http404("No such action.")
    except (services.IllegalTransition, services.QueueUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect("dashboard")


def _retry_failed(request, queue: str, actor: str):
    if not request.POST.get("confirmed"):
        n = Job.objects.filter(queue=queue, status=Job.Status.FAILED).count()
        if not n:
            messages.info(request, f"{queue}: no failed job to retry.")
            return redirect("dashboard")
        warning = (
            f"Retry {n} failed job(s) of {queue}: each runs again now (or when its "
            "workspace's rate limit allows), with a fresh set of attempts."
        )
        return _confirm(request, warning)
    count = services.jobs_retry_failed(queue=queue, actor=actor)
    messages.success(request, f"{queue}: retried {count} failed job(s).")
    return redirect("dashboard")


def _clean(request, queue: str, status: str, actor: str):
    if status not in services.CLEANABLE_STATUSES:
        raise Http404("No such action.")
    hours = _hours(request.POST.get("older_than_hours"))
    if hours is None:
        messages.error(request, "Older than: a whole number of hours, at least 1.")
        return redirect("dashboard")
    older_than = timedelta(hours=hours)
    if not request.POST.get("confirmed"):
        n = services.cleanable(queue=queue, status=status, older_than=older_than)
        since = "were made" if status == Job.Status.DELAYED else "finished"
        if not (n := n.count()):
            messages.info(request, f"{queue}: no {status} job {since} {hours} h ago.")
            return redirect("dashboard")
        warning = (
            f"Delete {n} {status} job(s) of {queue} that {since} more than "
            f"{hours} hour(s) ago, with their attempts and what Redis holds of them. "
            "This cannot be undone."
        )
        return _confirm(request, warning)
    count = services.jobs_clean(
        queue=queue, status=status, older_than=older_than, actor=actor
    )
    messages.success(request, f"{queue}: deleted {count} {status} job(s).")
    return redirect("dashboard")


def _confirm(request, warning: str, back: str = "/admin/queues"):
    """The page that says what an action will touch; its button posts it again."""
    fields = [(k, v) for k, v in request.POST.items() if k != "csrfmiddlewaretoken"]
    context = {"warning": warning, "fields": fields, "back": back}
    return render(request, "dashboard/confirm.html", context)


def _hours(raw) -> int | None:
    value = plain.whole_number(raw)
    return value if value is not None and value >= 1 else None


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
