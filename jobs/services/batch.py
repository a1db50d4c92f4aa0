"""Many new jobs at once (POST /api/schedule-batch, manage.py schedule_csv).

The same rules as job_schedule, item by item, but one query for the workspaces, one
for the idempotency keys, one insert and one Redis transaction for the lot.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.models import Job, Workspace
from jobs.ratelimit import plans_within_rate, rate_of
from jobs.sendtime import SendTimeError, plan_for_request, plan_inputs
from jobs.services.errors import IdempotencyConflict, QueueUnavailable
from jobs.services.holds import holds_for, release_unheld
from jobs.services.idempotency import earlier_jobs, request_hash, same_request
from jobs.services.scheduling import JobMaker, campaign_id, new_ids
from jobs.services.storing import store_and_place

NOT_SCHEDULED = "Valid, but not scheduled: the batch is atomic and a message failed."


@dataclass
class BatchItem:
    """One validated message of a batch."""

    index: int
    job_type: str
    payload: dict  # the message as sent, without "type": stored, and the callback body
    data: dict  # its validated fields (delay, sendAt, timezone, respectQuietHours...)
    idempotency_key: str | None = None
    # Worked out once, when the item is made: a batch asks for them five times per
    # message (as cached_property they took a lock each: 2.7% of a batch's
    # instructions, callgrind of bench/cpu_per_request.py --scenarios batch).
    workspace_id: str = field(init=False)
    # (campaign id, workspace id): what a pause holds.
    scope: tuple[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.workspace_id = str(self.payload["workspaceId"])
        self.scope = (campaign_id(self.payload), self.workspace_id)


@dataclass
class ItemResult:
    """A scheduled (or replayed) job, or the errors that kept a message out."""

    index: int
    job: Job | None = None
    replayed: bool = False
    errors: dict[str, list[str]] | None = None


def jobs_schedule_batch(
    *,
    items: list[BatchItem],
    refused: list[ItemResult] = (),
    atomic: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[ItemResult]:
    """Schedule every item that can be; results in index order, `refused` included.

    `refused` are messages the caller's validation already turned down. With
    `atomic` one refused message refuses them all and nothing is created. A
    metadata.idempotencyKey seen in this batch or the last IDEMPOTENCY_TTL_S (same
    workspace) replays that job, or refuses the message when its body differs.
    Rows are committed before Redis hears of them; if Redis refuses, they are
    deleted and QueueUnavailable is raised: nothing is scheduled. `dry_run`
    checks everything and returns the jobs it would create, unsaved.
    """
    now = now or timezone.now()
    for last_try in (False, True):
        results, fresh = _prepare(items, now)
        results.update({result.index: result for result in refused})
        if atomic and any(result.errors for result in results.values()):
            return _refuse_all(results)
        if dry_run or not fresh:
            return [results[index] for index in sorted(results)]
        try:
            store_and_place(fresh)
            break
        except IntegrityError:
            # A concurrent request took one of the keys: look them up again.
            if last_try or not any(item.idempotency_key for item in items):
                raise
    release_unheld(fresh)
    return [results[index] for index in sorted(results)]


def _prepare(items, now) -> tuple[dict[int, ItemResult], list[Job]]:
    """Each item's result and the unsaved rows of the jobs to create."""
    workspaces = _workspaces(items)
    known = earlier_jobs(
        {(item.workspace_id, item.idempotency_key) for item in items
         if item.idempotency_key},
        now,
    )  # fmt: skip
    # Keys first used in this batch: (its index, request hash), and the indexes of
    # later messages replaying it.
    first_use, replays = {}, defaultdict(list)
    results, planned, plans = {}, [], {}
    for item in items:
        workspace_id = item.workspace_id
        key = (workspace_id, item.idempotency_key)
        # Only a key can be repeated: no hash (and none stored) without one.
        digest = (
            request_hash(item.job_type, item.payload) if item.idempotency_key else ""
        )
        earlier = known.get(key) if item.idempotency_key else None
        first = first_use.get(key) if item.idempotency_key else None
        if earlier is not None or first is not None:
            if earlier is not None:
                same = same_request(earlier, item.job_type, item.payload, digest)
            else:
                same = first[1] == digest
            if not same:
                results[item.index] = ItemResult(
                    item.index, errors={"idempotencyKey": [IdempotencyConflict.message]}
                )
            elif earlier is not None:
                results[item.index] = ItemResult(item.index, job=earlier, replayed=True)
            else:
                replays[first[0]].append(item.index)
            continue
        # Plans are immutable and most of a batch's messages share theirs (the
        # same delay, the same workspace): each distinct one is made once.
        plan_key = (workspace_id, *plan_inputs(item.data))
        try:
            plan = plans.get(plan_key)
            if plan is None:
                plan = plans[plan_key] = plan_for_request(
                    item.data, now=now, workspace=workspaces.get(workspace_id)
                )
        except SendTimeError as exc:
            results[item.index] = ItemResult(
                item.index, errors={exc.field: [exc.message]}
            )
            continue
        if item.idempotency_key:
            first_use[key] = (item.index, digest)
        planned.append((item, plan, digest))
    # Paused campaigns and workspaces hold their new jobs (one query for the
    # batch); held jobs take no rate-limit slot, as in job_schedule.
    held = holds_for((item.scope for item, _, _ in planned), fresh=False)
    free = [entry for entry in planned if entry[0].scope not in held]
    fresh = []
    ids, make = iter(new_ids(len(planned))), JobMaker()
    for item, plan, digest in [
        *_within_rate(free, workspaces),
        *(entry for entry in planned if entry[0].scope in held),
    ]:
        job = make(
            item.job_type,
            item.payload,
            plan,
            item.idempotency_key,
            digest,
            held,
            job_id=next(ids),
        )
        fresh.append(job)
        results[item.index] = ItemResult(item.index, job=job)
        for index in replays[item.index]:
            results[index] = ItemResult(index, job=job, replayed=True)
    return results, fresh


def _within_rate(planned: list, workspaces: dict[str, Workspace]) -> list:
    """The plans moved by their workspaces' rate limits: one call per workspace."""
    by_workspace = defaultdict(list)
    for position, (item, _, _) in enumerate(planned):
        by_workspace[item.workspace_id].append(position)
    planned = list(planned)
    try:
        for workspace_id, positions in by_workspace.items():
            plans = [planned[position][1] for position in positions]
            rate = rate_of(workspaces.get(workspace_id))
            limited = plans_within_rate(workspace_id, plans, rate)
            for position, plan in zip(positions, limited, strict=True):
                item, _, digest = planned[position]
                planned[position] = (item, plan, digest)
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    return planned


def _workspaces(items) -> dict[str, Workspace]:
    rows = Workspace.objects.filter(workspace_id__in={i.workspace_id for i in items})
    return {workspace.workspace_id: workspace for workspace in rows}


def _refuse_all(results: dict[int, ItemResult]) -> list[ItemResult]:
    return [
        result
        if result.errors
        else ItemResult(index, errors={"atomic": [NOT_SCHEDULED]})
        for index, result in sorted(results.items())
    ]
