"""Cancel, pause, resume and reschedule: one job, or every pending job of a
campaign or a workspace, through the chunk loop (jobs.services.chunks).
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import Job, PausedScope
from jobs.sendtime import SendPlan, SendTimeError, plan_send
from jobs.services.audit import audit
from jobs.services.chunks import apply, update, update_each, write_resume
from jobs.services.errors import IllegalTransition
from jobs.services.holds import forget_cached_pauses, wait_out_cached_pauses
from jobs.workspaces import workspace_rules

S = Job.Status
PAUSABLE = [S.WAITING, S.DELAYED]
# Cancel, resume and reschedule also take paused jobs.
HELD = [S.WAITING, S.DELAYED, S.PAUSED]


@dataclass(frozen=True)
class Counts:
    changed: int  # jobs moved to the new state (or time)
    skipped: int  # matching jobs being delivered right now: left alone


@dataclass(frozen=True)
class NewTime:
    """A reschedule: delay (ms from now) or sendAt [+ timezone], or shift_ms."""

    delay_ms: int | None = None
    send_at: str | None = None
    tz_name: str | None = None
    shift_ms: int | None = None


# --- one job ----------------------------------------------------------------------
def job_reschedule(*, job_id, when: NewTime, actor: str) -> Job:
    """Move a pending job to a new due time; a paused job stays paused."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise IllegalTransition(f"There is no job {job_id}.")
    times = _new_times(when, [job.workspace_id], timezone.now())
    if not apply([job.pk], allowed=HELD, write=_write_times(times)):
        job.refresh_from_db()
        raise IllegalTransition(f"Cannot reschedule a job that is {job.status}.")
    job.refresh_from_db()
    audit(actor, "reschedule", job=job, detail=f"to {job.scheduled_for.isoformat()}")
    return job


# --- every pending job of a campaign or a workspace -------------------------------
def jobs_cancel(*, campaign_id=None, workspace_id=None, actor: str) -> Counts:
    """Cancel every waiting, delayed or paused job: none of them is delivered.

    Cancel also ends a pause of the scope (before the jobs are listed): the
    campaign is over, and jobs scheduled for it afterwards go out as usual.
    """
    _forget_pauses(campaign_id, workspace_id)
    now = timezone.now()

    def write(rows):
        update(rows, HELD, status=S.CANCELLED, finished_at=now)

    return _bulk("cancel", campaign_id, workspace_id, actor, HELD, write)


def jobs_pause(*, campaign_id=None, workspace_id=None, actor: str) -> Counts:
    """Hold every waiting or delayed job: out of Redis, keeping its due time.

    The pause is recorded first (PausedScope), so jobs scheduled for the scope
    from now on are held too (jobs.services.holds), until resume or cancel; the
    answer waits until every process's copy of the pauses has it.
    """
    _matching(campaign_id, workspace_id)
    PausedScope.objects.get_or_create(
        campaign_id=_key(campaign_id),
        workspace_id=_key(workspace_id),
        defaults={"paused_at": timezone.now(), "actor": actor},
    )
    recorded_at = time.monotonic()
    forget_cached_pauses()

    def write(rows):
        update(rows, PAUSABLE, status=S.PAUSED)

    counts = _bulk("pause", campaign_id, workspace_id, actor, PAUSABLE, write)
    wait_out_cached_pauses(recorded_at)
    return counts


def jobs_resume(*, campaign_id=None, workspace_id=None, actor: str) -> Counts:
    """Release paused jobs: due later -> the scheduler; overdue -> a queue, now.

    The pause record goes first: a job written paused after that is released by
    its writer (jobs.services.holds.release_unheld), one written before is listed.
    """
    _forget_pauses(campaign_id, workspace_id)
    return _bulk("resume", campaign_id, workspace_id, actor, [S.PAUSED], write_resume)


def _key(scope_id) -> str:
    return "" if scope_id is None else str(scope_id)


def _forget_pauses(campaign_id, workspace_id) -> None:
    """End the pauses this scope covers: every pause of the campaign (within the
    workspace, when one is given), or every pause within the workspace."""
    pauses = PausedScope.objects.all()
    if campaign_id is not None:
        pauses = pauses.filter(campaign_id=str(campaign_id))
    if workspace_id is not None:
        pauses = pauses.filter(workspace_id=str(workspace_id))
    pauses.delete()
    forget_cached_pauses()


def jobs_reschedule(
    *, campaign_id=None, workspace_id=None, when: NewTime, actor: str
) -> Counts:
    """Give every waiting, delayed or paused job a new due time (or shift it)."""
    jobs = _matching(campaign_id, workspace_id)
    spaces = list(
        jobs.filter(status__in=HELD).values_list("workspace_id", flat=True).distinct()
    ) or ([str(workspace_id)] if workspace_id is not None else [])
    # Every plan before any change: a bad sendAt changes nothing.
    times = _new_times(when, spaces, timezone.now())
    return _bulk(
        "reschedule", campaign_id, workspace_id, actor, HELD, _write_times(times)
    )


def _matching(campaign_id, workspace_id):
    if campaign_id is None and workspace_id is None:
        raise ValueError("a campaign_id or a workspace_id is required")
    jobs = Job.objects.all()
    if campaign_id is not None:
        jobs = jobs.filter(campaign_id=str(campaign_id))
    if workspace_id is not None:
        jobs = jobs.filter(workspace_id=str(workspace_id))
    return jobs


def _bulk(action, campaign_id, workspace_id, actor, allowed, write) -> Counts:
    jobs = _matching(campaign_id, workspace_id)
    ids = list(jobs.filter(status__in=allowed).values_list("id", flat=True))
    active = jobs.filter(status=S.ACTIVE).count()
    changed = apply(ids, allowed=allowed, write=write)
    # Listed but taken by a worker (or another operation) before its chunk ran.
    counts = Counts(changed=changed, skipped=active + len(ids) - changed)
    detail = (
        f"campaign={campaign_id if campaign_id is not None else '*'} "
        f"workspace={workspace_id if workspace_id is not None else '*'} "
        f"changed={counts.changed} skipped={counts.skipped}"
    )
    audit(actor, action, detail=detail)
    return counts


def _write_times(times):
    """A writer giving each row times(row) -> (due, plan or None); paused stay so."""

    def write(rows: list[Job]) -> None:
        now = timezone.now()
        for row in rows:
            due, plan = times(row)
            row.due_at = row.scheduled_for = due
            if plan is not None:
                row.requested_for = plan.requested_for
                row.timezone = plan.timezone_name
                row.deferred_reason = plan.deferred_reason
            if row.status != S.PAUSED:
                row.status = S.DELAYED if due > now else S.WAITING
        names = ["status", "due_at", "scheduled_for"]
        if plan is not None:
            names += ["requested_for", "timezone", "deferred_reason"]
        update_each(rows, HELD, names)

    return write


def _new_times(when: NewTime, workspace_ids, now: datetime):
    """times(row) -> (new due time, the SendPlan or None for a shift).

    Plans are made once per workspace (its time zone and quiet hours); raises
    SendTimeError before anything changes.
    """
    if when.shift_ms is not None:
        shift = timedelta(milliseconds=when.shift_ms)
        # Never before now: a job shifted into the past is due at once.
        return lambda row: (max(row.scheduled_for + shift, now), None)
    if when.delay_ms is None and when.send_at is None:
        raise SendTimeError("delay", "Give delay, sendAt or shiftMs.")

    def plan_for(workspace_id) -> SendPlan:
        return plan_send(
            now=now,
            delay_ms=when.delay_ms,
            send_at=when.send_at,
            tz_name=when.tz_name,
            workspace=workspace_rules(workspace_id) if workspace_id else None,
            max_delay_ms=settings.MAX_DELAY_MS,
        )

    # With no job to plan for, still check the input (no workspace rules then).
    plans = {space: plan_for(space) for space in workspace_ids or [None]}

    def times(row):
        plan = plans.get(row.workspace_id) or plan_for(row.workspace_id)
        return plan.due_at, plan

    return times
