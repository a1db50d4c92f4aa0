"""Cancel, pause, resume and reschedule: one job, or every pending job of a
campaign or a workspace.

Jobs are changed in chunks of CHUNK ids. For each chunk, in one transaction: the
rows still in an allowed status are locked, changed in one statement (or one
bulk update when every row gets its own time), and their RQ jobs are removed and,
when they stay pending, created again, in one Redis pipeline. A worker marks a row
active with a conditional UPDATE (jobs.services.attempts), so it either got the
row first (the job is active and left alone: "skipped") or waits for the commit
and then finds it paused or cancelled and does not deliver it. If Redis fails, the
chunk's transaction rolls back: a row never says paused while its RQ job is live
without that being safe, nor pending without an RQ job.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.utils import utcformat

from jobs.models import Job, PausedScope
from jobs.queues import get_queue, get_scheduler
from jobs.scheduler import (
    NEXT_WAKE_KEY,
    SCHEDULED_JOBS_KEY,
    WAKEUP_CHANNEL,
    schedule_job_id,
)
from jobs.sendtime import SendPlan, SendTimeError, plan_send
from jobs.services.common import (
    IllegalTransition,
    QueueUnavailable,
    _retry_policy,
    audit,
    rq_job_timeout,
)
from jobs.services.holds import forget_cached_pauses
from jobs.workspaces import workspace_rules

CHUNK = 1000
# What the chunk loop needs of a row (the payload would cost more than the rest).
ROW_FIELDS = [
    "id", "status", "queue", "workspace_id", "scheduled_for", "attempts",
    "max_attempts",
]  # fmt: skip
S = Job.Status
PAUSABLE = [S.WAITING, S.DELAYED]
# Cancel, resume and reschedule also take paused jobs.
HELD = [S.WAITING, S.DELAYED, S.PAUSED]

# Remove the ids in ARGV from the list KEYS[1] in one pass (LREM per id would scan
# a 50,000-job queue once per id). Atomic, so no worker pops in between.
LIST_REMOVE_LUA = """
local drop = {}
for i = 1, #ARGV do drop[ARGV[i]] = true end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local keep, removed = {}, 0
for _, id in ipairs(items) do
  if drop[id] then removed = removed + 1 else keep[#keep + 1] = id end
end
if removed == 0 then return 0 end
redis.call('DEL', KEYS[1])
for i = 1, #keep, 5000 do
  redis.call('RPUSH', KEYS[1], unpack(keep, i, math.min(i + 4999, #keep)))
end
return removed
"""


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
    if not _apply([job.pk], allowed=HELD, write=_write_times(times)):
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
        _update(rows, HELD, status=S.CANCELLED, finished_at=now)
        return []

    return _bulk("cancel", campaign_id, workspace_id, actor, HELD, write)


def jobs_pause(*, campaign_id=None, workspace_id=None, actor: str) -> Counts:
    """Hold every waiting or delayed job: out of Redis, keeping its due time.

    The pause is recorded first (PausedScope), so jobs scheduled for the scope
    from now on are held too (jobs.services.holds), until resume or cancel.
    """
    _matching(campaign_id, workspace_id)
    PausedScope.objects.get_or_create(
        campaign_id=_key(campaign_id),
        workspace_id=_key(workspace_id),
        defaults={"paused_at": timezone.now(), "actor": actor},
    )
    forget_cached_pauses()

    def write(rows):
        _update(rows, PAUSABLE, status=S.PAUSED)
        return []

    return _bulk("pause", campaign_id, workspace_id, actor, PAUSABLE, write)


def jobs_resume(*, campaign_id=None, workspace_id=None, actor: str) -> Counts:
    """Release paused jobs: due later -> the scheduler; overdue -> a queue, now.

    The pause record goes first: a job written paused after that is released by
    its writer (jobs.services.holds.release_unheld), one written before is listed.
    """
    _forget_pauses(campaign_id, workspace_id)
    return _bulk("resume", campaign_id, workspace_id, actor, [S.PAUSED], _write_resume)


def release(ids: list) -> int:
    """Release these paused jobs as jobs_resume does (no audit: not an operation)."""
    return _apply(ids, allowed=[S.PAUSED], write=_write_resume)


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
    changed = _apply(ids, allowed=allowed, write=write)
    # Listed but taken by a worker (or another operation) before its chunk ran.
    counts = Counts(changed=changed, skipped=active + len(ids) - changed)
    detail = (
        f"campaign={campaign_id if campaign_id is not None else '*'} "
        f"workspace={workspace_id if workspace_id is not None else '*'} "
        f"changed={counts.changed} skipped={counts.skipped}"
    )
    audit(actor, action, detail=detail)
    return counts


# --- the chunk loop ---------------------------------------------------------------
def _apply(ids: list, *, allowed: list[str], write) -> int:
    """Lock each chunk's rows still in `allowed`; `write(rows)` changes them in the
    database and returns the rows to hand to Redis again. Returns how many changed.
    """
    changed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        try:
            with transaction.atomic():
                rows = list(
                    Job.objects.select_for_update()
                    .filter(pk__in=chunk, status__in=allowed)
                    .only(*ROW_FIELDS)
                )
                if not rows:
                    continue
                requeue = write(rows)
                _swap_in_redis(removed=rows, added=requeue)
        except RedisError as exc:
            raise QueueUnavailable(
                f"{exc}; {changed} job(s) were changed before Redis failed"
            ) from exc
        changed += len(rows)
    return changed


def _update(rows: list[Job], allowed: list[str], **fields) -> None:
    Job.objects.filter(pk__in=[row.pk for row in rows], status__in=allowed).update(
        **fields
    )
    for row in rows:
        for name, value in fields.items():
            setattr(row, name, value)


def _write_resume(rows: list[Job]) -> list[Job]:
    now = timezone.now()
    later = [row for row in rows if row.scheduled_for > now]
    overdue = [row for row in rows if row.scheduled_for <= now]
    _update(later, [S.PAUSED], status=S.DELAYED)
    _update(overdue, [S.PAUSED], status=S.WAITING)
    return rows


def _write_times(times):
    """A writer giving each row times(row) -> (due, plan or None); paused stay so."""

    def write(rows: list[Job]) -> list[Job]:
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
        _update_each(rows, HELD, names)
        return [row for row in rows if row.status != S.PAUSED]

    return write


def _update_each(rows: list[Job], allowed: list[str], names: list[str]) -> None:
    """Save each row's own values of `names`, guarded on its status, in one batch.

    One statement run for every row (executemany): Django's bulk_update builds a
    CASE per field and row, and took 40 s for 50,000 jobs against 1 s for this.
    """
    fields = [Job._meta.get_field(name) for name in names]
    status, pk = Job._meta.get_field("status"), Job._meta.pk
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    marks = ", ".join(["%s"] * len(allowed))
    sql = (
        f"UPDATE {quote(Job._meta.db_table)} SET {sets} "
        f"WHERE {quote(pk.column)} = %s AND {quote(status.column)} IN ({marks})"
    )
    params = [
        [
            *(
                field.get_db_prep_save(getattr(row, field.attname), connection)
                for field in fields
            ),
            pk.get_db_prep_value(row.pk, connection),
            *map(str, allowed),
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


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


# --- Redis ------------------------------------------------------------------------
# Put back RQ jobs whose hash is still there (kept by a pause, or a reschedule):
# ARGV[6..] are (id, queue, due epoch seconds or '' for "queue now") triples. Wakes
# the scheduler as SCHEDULE_LUA does. Returns the ids without a hash, to create.
PLACE_LUA = """
local missing, earliest = {}, nil
for i = 6, #ARGV, 3 do
  local id, queue_key, score = ARGV[i], ARGV[2] .. ARGV[i + 1], ARGV[i + 2]
  local job_key = ARGV[1] .. id
  if redis.call('EXISTS', job_key) == 0 then
    missing[#missing + 1] = id
  else
    redis.call('PERSIST', job_key)
    if score == '' then
      redis.call('HSET', job_key, 'status', 'queued', 'enqueued_at', ARGV[4])
      redis.call('RPUSH', queue_key, id)
      redis.call('SADD', ARGV[3], queue_key)
    else
      redis.call('HSET', job_key, 'status', 'scheduled')
      redis.call('ZADD', KEYS[1], score, id)
      if (not earliest) or tonumber(score) < earliest then
        earliest = tonumber(score)
      end
    end
  end
end
if earliest then
  local wake = redis.call('GET', KEYS[2])
  if (not wake) or earliest < tonumber(wake) then
    redis.call('PUBLISH', ARGV[5], tostring(earliest))
  end
end
return missing
"""


def _swap_in_redis(*, removed: list[Job], added: list[Job]) -> None:
    """Take the RQ jobs of `removed` off every queue and schedule (deleting those of
    cancelled jobs), then put those of `added` where their status says.

    A paused job keeps its RQ hash, so resuming or rescheduling it costs a few
    commands per job instead of building the RQ job again (a tenth of the time).
    """
    scheduler = get_scheduler()
    client = scheduler.connection
    prefix = scheduler.job_class.redis_job_namespace_prefix
    by_queue = defaultdict(list)
    for row in removed:
        by_queue[row.queue].append(str(row.id))
    doomed = [str(row.id) for row in removed if row.status == S.CANCELLED]
    with client.pipeline() as pipe:
        if removed:
            pipe.zrem(SCHEDULED_JOBS_KEY, *[str(row.id) for row in removed])
        for queue_name, ids in by_queue.items():
            key = get_queue(queue_name).key
            _script(client, LIST_REMOVE_LUA)(keys=[key], args=ids, client=pipe)
        if doomed:
            pipe.delete(*[prefix + job_id for job_id in doomed])
        if added:
            _script(client, PLACE_LUA)(
                keys=[SCHEDULED_JOBS_KEY, NEXT_WAKE_KEY],
                args=[prefix, get_queue(added[0].queue).redis_queue_namespace_prefix,
                      get_queue(added[0].queue).redis_queues_keys,
                      utcformat(datetime.now(UTC)), WAKEUP_CHANNEL,
                      *_placements(added)],
                client=pipe,
            )  # fmt: skip
        replies = pipe.execute()
    missing = {job_id.decode() for job_id in replies[-1]} if added else set()
    if missing:
        _create([row for row in added if str(row.id) in missing])


def _placements(rows: list[Job]) -> list[str]:
    args = []
    for row in rows:
        due = repr(row.scheduled_for.timestamp()) if row.status == S.DELAYED else ""
        args += [str(row.id), row.queue, due]
    return args


@lru_cache(maxsize=16)
def _script(client, source: str):
    # EVALSHA: the script is not sent again with every chunk.
    return client.register_script(source)


def _create(rows: list[Job]) -> None:
    """New RQ jobs for rows Redis has no hash for (cancelled meanwhile, flushed)."""
    scheduler = get_scheduler()
    with scheduler.connection.pipeline() as pipe:
        # Explicit MULTI: RQ's enqueue_job would otherwise call multi() midway.
        pipe.multi()
        queues = {}
        for row in rows:
            _enqueue(pipe, scheduler, queues, row)
        pipe.execute()


def _enqueue(pipe, scheduler, queues: dict, job: Job) -> None:
    """enqueue_delivery, written into a pipeline shared by the whole chunk."""
    retry = _retry_policy(done=job.attempts, total=job.max_attempts)
    if job.status == S.DELAYED:
        rq_job = scheduler._create_job(
            "jobs.tasks.deliver",
            commit=False,
            id=str(job.id),
            timeout=rq_job_timeout(),
            queue_name=job.queue,
        )
        if retry is not None:
            rq_job.retries_left = retry.max
            rq_job.retry_intervals = retry.intervals
        rq_job.save(pipeline=pipe)
        schedule_job_id(pipe, rq_job.id, job.scheduled_for.timestamp())
        return
    queue = queues.get(job.queue) or queues.setdefault(job.queue, get_queue(job.queue))
    rq_job = queue.create_job(
        "jobs.tasks.deliver",
        job_id=str(job.id),
        timeout=rq_job_timeout(),
        retry=retry,
        result_ttl=settings.RQ.get("DEFAULT_RESULT_TTL"),
    )
    queue.enqueue_job(rq_job, pipeline=pipe)
