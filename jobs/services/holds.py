"""Paused campaigns and workspaces (jobs.models.PausedScope) hold new jobs too.

jobs_pause records the scope before it pauses the jobs that exist; a job scheduled
later for it is written paused (jobs.services.scheduling, jobs.services.batch), and
the worker sets paused any row of a paused scope it is handed (a request that
checked just before the pause was recorded). jobs_resume and jobs_cancel delete
the record before they list the paused jobs, and whoever writes a paused row
checks the record again afterwards and releases the row if it is gone: a row is
either listed by the resume or released by its writer, never left paused.
"""

import time
from collections.abc import Iterable

from django.db import router
from django.db.models import Exists, OuterRef, Q

from jobs.models import Job, PausedScope
from jobs.rows import any_row
from jobs.services.chunks import release

Pair = tuple[str, str]  # (campaign_id, workspace_id) of a job


def holds_for(pairs: Iterable[Pair], *, fresh: bool = True) -> dict[Pair, str]:
    """Which of the (campaign_id, workspace_id) pairs a pause holds, and by what
    ("workspace" or "campaign").

    fresh=False may use the process's copy of the pauses, up to PAUSES_CACHE_S old:
    for the check when a job is scheduled (a query there was 29% of a schedule
    request's CPU, cProfile). A job that slips through a pause made in another
    process within that time is parked by the worker's guard (jobs_hold_paused),
    which, like the re-check after writing (release_unheld), reads fresh.
    """
    pairs = set(pairs)
    if not pairs:
        return {}
    scopes = _paused_scopes() if not fresh else _scopes_for(pairs)
    held = {}
    for campaign, workspace in pairs:
        if ("", workspace) in scopes:
            held[campaign, workspace] = "workspace"
        elif campaign and scopes & {(campaign, ""), (campaign, workspace)}:
            held[campaign, workspace] = "campaign"
    return held


def _scopes_for(pairs: set[Pair]) -> set[Pair]:
    """The recorded pauses that could hold any of the pairs: one indexed query."""
    campaigns = {campaign for campaign, _ in pairs if campaign}
    workspaces = {workspace for _, workspace in pairs}
    return set(
        PausedScope.objects.filter(
            Q(campaign_id="", workspace_id__in=workspaces)
            | Q(campaign_id__in=campaigns, workspace_id__in=["", *workspaces])
        ).values_list("campaign_id", "workspace_id")
    )


PAUSES_CACHE_S = 1.0
# (time.monotonic() when read, every recorded pause): the table holds a few rows.
_pauses: tuple[float, frozenset[Pair]] | None = None


def _paused_scopes() -> frozenset[Pair]:
    global _pauses
    now = time.monotonic()
    if _pauses is None or now - _pauses[0] > PAUSES_CACHE_S:
        rows = PausedScope.objects.values_list("campaign_id", "workspace_id")
        _pauses = (now, frozenset(rows))
    return _pauses[1]


def wait_out_cached_pauses(recorded_at: float) -> None:
    """Return only once every process's copy of the pauses (_paused_scopes) was
    read after `recorded_at` (time.monotonic() once a new pause was committed): a
    pause's answer then means that every schedule request after it, whichever web
    process it meets, is held and says so. At most PAUSES_CACHE_S, less the time
    the pause's own work took."""
    remaining = PAUSES_CACHE_S - (time.monotonic() - recorded_at)
    if remaining > 0:
        time.sleep(remaining)


def forget_cached_pauses() -> None:
    """Read the pauses again on next use (after this process paused or resumed)."""
    global _pauses
    _pauses = None


def release_unheld(jobs: list[Job]) -> None:
    """After paused rows were written: release those whose pause ended meanwhile
    (a resume or cancel that listed its jobs before these rows were committed)."""
    paused = [job for job in jobs if job.status == Job.Status.PAUSED]
    if not paused:
        return
    held = holds_for((job.campaign_id, job.workspace_id) for job in paused)
    free = [job for job in paused if (job.campaign_id, job.workspace_id) not in held]
    if not free:
        return
    release([job.pk for job in free])
    states = dict(
        Job.objects.filter(pk__in=[job.pk for job in free]).values_list("pk", "status")
    )
    for job in free:
        job.status = states.get(job.pk, job.status)
        job.held_by = None


def held_by_a_pause() -> Exists:
    """For a Job queryset: whether a PausedScope holds the row."""
    return Exists(
        PausedScope.objects.filter(
            Q(campaign_id="") | Q(campaign_id=OuterRef("campaign_id")),
            Q(workspace_id="") | Q(workspace_id=OuterRef("workspace_id")),
        )
    )


def jobs_hold_paused(*, job_ids: list) -> list:
    """The worker's guard: rows handed to it (waiting or delayed) whose campaign or
    workspace is paused are set paused instead of delivered. Returns their ids.

    For a request that checked for a pause just before jobs_pause recorded it and
    committed its row after jobs_pause listed the jobs. The RQ job was consumed;
    resume places it again (jobs.services.chunks).
    """
    # The common case, no pause anywhere: one read, no write lock.
    if not any_row(PausedScope, using=router.db_for_read(PausedScope)):
        return []
    rows = Job.objects.filter(
        pk__in=job_ids, status__in=[Job.Status.WAITING, Job.Status.DELAYED]
    ).filter(held_by_a_pause())
    found = list(rows.only("id", "campaign_id", "workspace_id", "status"))
    if not found:
        return []
    Job.objects.filter(
        pk__in=[job.pk for job in found],
        status__in=[Job.Status.WAITING, Job.Status.DELAYED],
    ).update(status=Job.Status.PAUSED)
    for job in found:
        job.status = Job.Status.PAUSED
    release_unheld(found)
    return [job.pk for job in found if job.status == Job.Status.PAUSED]
