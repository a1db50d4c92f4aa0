"""Prometheus metrics, kept in Redis: web, workers and schedulers all add to them.

Writers merge their increments in a Tally and add it with HINCRBY / HINCRBYFLOAT to
the Redis pipeline they already run for their bookkeeping, so a metric costs no
round trip of its own. A histogram is one hash: a count per bucket (not cumulative)
and the sum of the observed values. The web process reads the hashes, the queues
and the Job table at scrape time (render()).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

PREFIX = "queueservices:metrics:"
ATTEMPTS_KEY = PREFIX + "attempts"
# delivered: 2xx; retry: failed, another attempt follows; failed: the last one
# failed; lost: its worker died or hung and the watchdog wrote it off.
OUTCOMES = ("delivered", "retry", "failed", "lost")
INF = "+Inf"


@dataclass(frozen=True)
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]

    @property
    def key(self) -> str:
        return PREFIX + self.name

    def fields(self) -> list[str]:
        return [floatToGoString(bound) for bound in self.buckets] + [INF]

    def field_for(self, value: float) -> str:
        for bound in self.buckets:
            if value <= bound:
                return floatToGoString(bound)
        return INF


CALLBACK_DURATION = Histogram(
    "callback_duration_seconds",
    "Time the backend took to answer one callback (or to fail it).",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FIRE_LATENESS = Histogram(
    "fire_lateness_seconds",
    "How late an attempt started after the time it was due (the job's due time, "
    "then each retry's).",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SCHEDULER_PASS = Histogram(
    "scheduler_pass_seconds",
    "Time one scheduler pass took: moving due jobs, and the watchdog when it ran.",
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
HISTOGRAMS = (CALLBACK_DURATION, FIRE_LATENESS, SCHEDULER_PASS)


class Tally:
    """Increments merged in memory (a fixed number of fields however many
    observations), written to a Redis pipeline by write()."""

    def __init__(self):
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._sums: dict[str, float] = defaultdict(float)

    def count(self, outcome: str, n: int = 1) -> None:
        self._counts[(ATTEMPTS_KEY, outcome)] += n

    def observe(self, histogram: Histogram, value: float) -> None:
        self._counts[(histogram.key, histogram.field_for(value))] += 1
        self._sums[histogram.key] += value

    def attempt(self, result: str, outcome, due: datetime) -> None:
        """One finished attempt (a jobs.delivery.Outcome) that was due at `due`.

        Lateness is clamped at 0: a rate() over the sum needs a counter that never
        goes down (that nothing fires early is tested elsewhere).
        """
        self.count(result)
        self.observe(CALLBACK_DURATION, outcome.duration_ms / 1000)
        lateness = (outcome.started_at - due).total_seconds()
        self.observe(FIRE_LATENESS, max(0.0, lateness))

    def write(self, pipe) -> None:
        """Add the increments to `pipe` (a Redis pipeline) and start afresh."""
        for (key, field), n in self._counts.items():
            pipe.hincrby(key, field, n)
        for key, total in self._sums.items():
            pipe.hincrbyfloat(key, "sum", total)
        self._counts.clear()
        self._sums.clear()


# Attempts made on RQ's one-job-at-a-time path (jobs.tasks.deliver), written by the
# worker into the pipeline that records the job's end (jobs.rq.DeliveryWorker).
PENDING = Tally()


# --- reading ----------------------------------------------------------------------
class QueueServicesCollector(Collector):
    def collect(self):
        yield self._jobs()
        try:
            yield from self._from_redis()
        except RedisError:
            # Redis down: the database's figures still count, and this says why
            # the others are missing.
            yield GaugeMetricFamily(
                "queueservices_redis_up", "Whether Redis answered the scrape.", 0
            )

    def _jobs(self):
        from django.conf import settings

        from jobs.models import Job
        from jobs.stats import queue_counts

        family = GaugeMetricFamily(
            "queueservices_jobs",
            "Jobs in the database by queue and status.",
            labels=["queue", "status"],
        )
        for queue, counts in queue_counts(settings.QUEUE_NAMES).items():
            for status in Job.Status.values:
                family.add_metric([queue, status], counts[status])
        return family

    def _from_redis(self):
        redis = _read_redis()
        yield GaugeMetricFamily(
            "queueservices_redis_up", "Whether Redis answered the scrape.", 1
        )
        attempts = CounterMetricFamily(
            "queueservices_delivery_attempts",
            "Callback attempts by outcome.",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            attempts.add_metric([outcome], int(redis["attempts"].get(outcome, 0)))
        yield attempts
        for histogram in HISTOGRAMS:
            yield _histogram_family(histogram, redis[histogram.key])
        lengths = GaugeMetricFamily(
            "queueservices_queue_length",
            "Jobs waiting in each RQ queue (due now, not yet taken by a worker).",
            labels=["queue"],
        )
        for queue, length in redis["queues"].items():
            lengths.add_metric([queue], length)
        yield lengths
        yield GaugeMetricFamily(
            "queueservices_scheduled_jobs",
            "Jobs in the scheduler's set: delayed jobs and retries not yet due.",
            redis["scheduled"],
        )
        yield GaugeMetricFamily(
            "queueservices_workers",
            "RQ workers registered and alive.",
            redis["workers"],
        )


def _histogram_family(histogram: Histogram, stored: dict) -> HistogramMetricFamily:
    cumulative, buckets = 0, []
    for field in histogram.fields():
        cumulative += int(stored.get(field, 0))
        buckets.append((field, cumulative))
    return HistogramMetricFamily(
        "queueservices_" + histogram.name,
        histogram.help,
        buckets=buckets,
        sum_value=float(stored.get("sum", 0)),
    )


def _read_redis() -> dict:
    """Everything in two round trips: the hashes and counts, then which of the
    registered workers still exist (a killed one stays registered a while)."""
    from django.conf import settings
    from rq import Queue
    from rq.worker_registration import REDIS_WORKER_KEYS

    from jobs.queues import redis_connection
    from jobs.scheduler import SCHEDULED_JOBS_KEY

    connection = redis_connection()
    with connection.pipeline(transaction=False) as pipe:
        pipe.hgetall(ATTEMPTS_KEY)
        for histogram in HISTOGRAMS:
            pipe.hgetall(histogram.key)
        for name in settings.QUEUE_NAMES:
            pipe.llen(Queue.redis_queue_namespace_prefix + name)
        pipe.zcard(SCHEDULED_JOBS_KEY)
        pipe.smembers(REDIS_WORKER_KEYS)
        replies = pipe.execute()
    hashes = [_decoded(reply) for reply in replies[: 1 + len(HISTOGRAMS)]]
    lengths = replies[1 + len(HISTOGRAMS) : -2]
    worker_keys = list(replies[-1])
    workers = connection.exists(*worker_keys) if worker_keys else 0
    return {
        "attempts": hashes[0],
        **{h.key: stored for h, stored in zip(HISTOGRAMS, hashes[1:], strict=True)},
        "queues": dict(zip(settings.QUEUE_NAMES, lengths, strict=True)),
        "scheduled": replies[-2],
        "workers": workers,
    }


def _decoded(reply: dict) -> dict[str, bytes]:
    return {field.decode(): value for field, value in reply.items()}


def render() -> bytes:
    """The metrics in Prometheus' text format (0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueServicesCollector())
    return generate_latest(registry)
