"""Delivering claimed jobs: start the attempts, make the callbacks, record them.

One path for every worker: ours hands over a claim of many jobs and has the ends
written to RQ's registries here (deliver_claimed); a stock RQ worker runs
jobs.tasks.deliver, which delivers its one job with deliver_one and lets RQ
record the end.
"""

import logging
from collections.abc import Callable, Iterable

from redis.exceptions import RedisError

from jobs import broker, delivery, metrics
from jobs.models import Job
from jobs.services.attempts import jobs_record_attempts, jobs_start_attempts

logger = logging.getLogger(__name__)

# How callbacks are made: map(delivery.deliver_job, jobs), or a thread pool's map.
Caller = Callable[[Callable, Iterable[Job]], Iterable[delivery.Outcome]]


def deliver_claimed(claimed: list[broker.Placed], *, worker: str, call: Caller = map):
    """Deliver what `worker` claimed and record every end, in the database (two
    statements to start, a few to record) and in Redis (one pipeline, metrics
    included)."""
    jobs, decisions, tally = _deliver([p.job_id for p in claimed], worker, call)
    # A claimed job that was not delivered (no longer pending) is done with, too.
    ends = {p: decisions.get(p.job_id, broker.COMPLETED) for p in claimed}
    try:
        broker.finish(worker, ends, tally)
    except RedisError as exc:
        # The database holds the outcome; RQ's maintenance tidies the registries.
        logger.warning("Redis unavailable recording %d end(s): %s", len(ends), exc)


def deliver_one(job_id: str, *, worker: str) -> tuple[Job | None, object]:
    """Deliver one job; returns the job (None when it is not to be delivered) and
    its decision (broker.COMPLETED, broker.FAILED or the retry's epoch seconds).
    The metrics go to Redis here; the caller records the end in RQ's terms."""
    jobs, decisions, tally = _deliver([job_id], worker, map)
    try:
        broker.write_counts(tally)
    except RedisError as exc:
        logger.warning("Redis unavailable recording metrics: %s", exc)
    if not jobs:
        return None, broker.COMPLETED
    return jobs[0], decisions[job_id]


def _deliver(job_ids: list[str], worker: str, call: Caller):
    jobs = jobs_start_attempts(job_ids=job_ids, worker=worker)
    # Before recording: a retry moves job.scheduled_for to the next attempt's time.
    dues = [job.scheduled_for for job in jobs]
    outcomes = list(call(delivery.deliver_job, jobs))
    decisions = jobs_record_attempts(results=list(zip(jobs, outcomes, strict=True)))
    tally = metrics.Tally()
    for job, outcome, due in zip(jobs, outcomes, dues, strict=True):
        decision = decisions[str(job.id)]
        result = {broker.COMPLETED: "delivered", broker.FAILED: "failed"}.get(
            decision, "retry"
        )
        tally.attempt(result, outcome, due=due)
    return jobs, decisions, tally
