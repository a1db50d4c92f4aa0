"""Delivering claimed jobs: start the attempts, make the callbacks, record them.

One path for every worker. Ours (jobs.processes.engine) starts the attempts of
what it claims in bulk (start_claimed), makes the callbacks itself, and records
the outcomes in bulk (record_outcomes: one transaction, one Redis pipeline). A
stock RQ worker runs jobs.tasks.deliver, which delivers its one job with
deliver_one and lets RQ record the end.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import router, transaction
from redis.exceptions import RedisError

from jobs import broker, delivery, metrics
from jobs.models import Job
from jobs.services.attempts import jobs_record_attempts, jobs_start_attempts
from jobs.writelock import write_turn

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finished:
    """One callback attempt made: the claim, its job, what came of it, and when
    the attempt was due (for the lateness metric)."""

    claimed: broker.Claimed
    job: Job
    outcome: delivery.Outcome
    due: datetime


def start_claimed(
    claimed: list[broker.Claimed], *, worker: str
) -> tuple[list[tuple[broker.Claimed, Job]], list[broker.Claimed]]:
    """Start the attempts of what `worker` claimed (two statements); returns the
    jobs to deliver with their claims, and the claims not to deliver (no longer
    pending, held by a pause, or someone else's attempt in flight)."""
    jobs = jobs_start_attempts(job_ids=[c.job_id for c in claimed], worker=worker)
    by_id = {str(job.id): job for job in jobs}
    started = [(c, by_id[c.job_id]) for c in claimed if c.job_id in by_id]
    skipped = [c for c in claimed if c.job_id not in by_id]
    return started, skipped


def record_outcomes(
    finished: list[Finished], skipped: list[broker.Claimed] = (), *, worker: str
) -> None:
    """Record the attempts (one transaction) and every end in RQ's registries,
    metrics included (one Redis pipeline)."""
    with write_turn(router.db_for_write(Job)), transaction.atomic():
        decisions = jobs_record_attempts(results=[(f.job, f.outcome) for f in finished])
    tally = _tally(finished, decisions)
    ends = {c.placed: broker.COMPLETED for c in skipped}
    ends.update({f.claimed.placed: decisions[f.claimed.job_id] for f in finished})
    try:
        broker.finish(worker, ends, tally)
    except RedisError as exc:
        # The database holds the outcome; RQ's maintenance tidies the registries.
        logger.warning("Redis unavailable recording %d end(s): %s", len(ends), exc)


def deliver_one(job_id: str, *, worker: str) -> tuple[Job | None, object]:
    """Deliver one job; returns the job (None when it is not to be delivered) and
    its decision (broker.COMPLETED, broker.FAILED or the retry's epoch seconds).
    The metrics go to Redis here; the caller records the end in RQ's terms."""
    [job] = jobs_start_attempts(job_ids=[job_id], worker=worker) or [None]
    if job is None:
        return None, broker.COMPLETED
    finished = Finished(None, job, delivery.deliver_job(job), job.scheduled_for)
    decisions = jobs_record_attempts(results=[(job, finished.outcome)])
    try:
        broker.write_counts(_tally([finished], decisions))
    except RedisError as exc:
        logger.warning("Redis unavailable recording metrics: %s", exc)
    return job, decisions[job_id]


def _tally(finished: list[Finished], decisions: dict) -> metrics.Tally:
    tally = metrics.Tally()
    for f in finished:
        decision = decisions[str(f.job.id)]
        result = {broker.COMPLETED: "delivered", broker.FAILED: "failed"}.get(
            decision, "retry"
        )
        tally.attempt(result, f.outcome, due=f.due)
    return tally
