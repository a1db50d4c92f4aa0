"""Prometheus metrics, kept in Redis: web, workers and schedulers all add to them.

Writers merge their increments in a Tally and add it with HINCRBY / HINCRBYFLOAT to
the Redis pipeline they already run for their bookkeeping, so a metric costs no
round trip of its own. A histogram is one hash: a count per bucket (not cumulative)
and the sum of the observed values. The web process reads the hashes, the queues
and the Job table at scrape time (render()).
"""

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.conf import settings
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

from jobs import broker
from jobs.models import Job
from jobs.stats import queue_counts

ATTEMPTS = "attempts"
# delivered: 2xx; retry: failed, another attempt follows; failed: the last one
# failed; lost: its worker died or hung and the watchdog wrote it off.
OUTCOMES = ("delivered", "retry", "failed", "lost")
INF = "+Inf"


@dataclass(frozen=True)
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]

    def fields(self) -> list[str]:
        return [*self._names]

    def field_for(self, value: float) -> str:
        # bisect_left: the first bound >= value (buckets are "le" bounds).
        return self._names[bisect_left(self.buckets, value)]

    @cached_property
    def _names(self) -> tuple[str, ...]:
        # Formatted once, not twice per callback (floatToGoString: 1.4% of a worker).
        return (*(floatToGoString(bound) for bound in self.buckets), INF)


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
        self._counts[(ATTEMPTS, outcome)] += n

    def observe(self, histogram: Histogram, value: float) -> None:
        self._counts[(histogram.name, histogram.field_for(value))] += 1
        self._sums[histogram.name] += value

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
        broker.add_counts(pipe, self._counts, self._sums)
        self._counts.clear()
        self._sums.clear()


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
        redis = broker.read_metrics(
            [ATTEMPTS, *(h.name for h in HISTOGRAMS)], settings.QUEUE_NAMES
        )
        yield GaugeMetricFamily(
            "queueservices_redis_up", "Whether Redis answered the scrape.", 1
        )
        attempts = CounterMetricFamily(
            "queueservices_delivery_attempts",
            "Callback attempts by outcome.",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            attempts.add_metric(
                [outcome], int(redis["metrics"][ATTEMPTS].get(outcome, 0))
            )
        yield attempts
        for histogram in HISTOGRAMS:
            yield _histogram_family(histogram, redis["metrics"][histogram.name])
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


def render() -> bytes:
    """The metrics in Prometheus' text format (0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueServicesCollector())
    return generate_latest(registry)
