"""Per-workspace rate limits: messages per second to the backend, for all workers.

The limit is applied where a job gets its due time, not where it is delivered:
RQ queues are FIFO, so a campaign already queued would sit in front of another
workspace's message. Each job instead reserves an instant in Redis when it is
scheduled (and again for each retry); the scheduler releases it then, so a
campaign waits in the scheduler's sorted set, not in front of anyone.

Reservations (jobs.broker.scripts.RESERVE_SLOTS): one pointer per workspace and
second, holding the next free instant of that second (a fresh second starts where the
one before left off). A job due at t (or now, if t has passed: unused capacity
of the past is not handed out, it would be a burst) takes max(t, pointer) if that
lies within t's second, else the first later second with room, and moves that
second's pointer 1/rate on (in whole microseconds, rounded up: exact integer
arithmetic). Instants within a second are 1/rate apart or more, so
no second holds more than `rate` jobs and no 1-second window more than rate + 1,
for any order of due times (due times in order: at most `rate`). A job due after
its second's pointer passed is pushed on by less than one second.
"""

import logging
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from redis.exceptions import RedisError

from jobs import broker
from jobs.models import Workspace
from jobs.sendtime import SendPlan
from jobs.workspaces import workspace_rules

logger = logging.getLogger(__name__)

# Due times per script call: bounds how long one call holds Redis.
CHUNK = 2_000
RATE_LIMITED = "rate-limit"
# Instants travel to Redis as whole epoch microseconds: exact both ways.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def reserve_slots(
    workspace_id: str, rate: int, due_times: list[datetime]
) -> list[datetime]:
    """An instant at or after each due time, at most `rate` a second in the workspace.

    One Redis round trip per CHUNK due times; due times may come in any order.
    rate <= 0 means unlimited: the due times come back unchanged, Redis untouched.
    """
    if rate <= 0 or not due_times:
        return list(due_times)
    micros = [(due - EPOCH) // MICROSECOND for due in due_times]
    reserved: list[datetime] = []
    for start in range(0, len(micros), CHUNK):
        instants = broker.reserve_slots(
            workspace_id, rate, micros[start : start + CHUNK]
        )
        reserved += [EPOCH + at * MICROSECOND for at in instants]
    return reserved


def workspace_rate(workspace_id: str) -> int:
    """Messages per second allowed for the workspace; 0 means unlimited.

    The row's rate_limit, or WORKSPACE_RATE_LIMIT when the row or its value is
    missing (rows cached per process: jobs.workspaces).
    """
    return rate_of(workspace_rules(workspace_id))


def rate_of(workspace: Workspace | None) -> int:
    """The rate of a Workspace row already at hand (None: no row), as workspace_rate."""
    own = workspace.rate_limit if workspace is not None else None
    return settings.WORKSPACE_RATE_LIMIT if own is None else own


def plans_within_rate(
    workspace_id: str, plans: list[SendPlan], rate: int | None = None
) -> list[SendPlan]:
    """The plans of one workspace, each moved to a reserved instant if the limit
    requires it (deferred_reason "rate-limit" unless already deferred).

    `rate` when the caller has the workspace's row (rate_of), else looked up.
    One Redis round trip for the whole list; none when the workspace is unlimited.
    Raises RedisError when Redis is unreachable.
    """
    if rate is None:
        rate = workspace_rate(str(workspace_id))
    if not rate:
        return list(plans)
    slots = reserve_slots(str(workspace_id), rate, [plan.due_at for plan in plans])
    return [
        plan
        if at == plan.due_at
        else replace(
            plan, due_at=at, deferred_reason=plan.deferred_reason or RATE_LIMITED
        )
        for plan, at in zip(plans, slots, strict=True)
    ]


def retry_times_within_rate(retries: list[tuple[str, datetime]]) -> list[datetime]:
    """For (workspace id, retry time) pairs, the instants the retries may run at.

    One round trip per limited workspace. A worker must record its outcome even
    when Redis is down: the retry then keeps its time, unlimited.
    """
    by_workspace = defaultdict(list)
    for index, (workspace_id, _) in enumerate(retries):
        by_workspace[str(workspace_id)].append(index)
    times = [at for _, at in retries]
    for workspace_id, indexes in by_workspace.items():
        rate = workspace_rate(workspace_id)
        try:
            slots = reserve_slots(workspace_id, rate, [times[i] for i in indexes])
        except RedisError as exc:
            logger.warning("rate limit not applied to retries (%s)", exc)
            continue
        for i, at in zip(indexes, slots, strict=True):
            times[i] = at
    return times
