import json
import time

import pytest
from django.test.utils import override_settings

from tests.conftest import OUTPUT_DIR, wait_for_schedulers, wait_for_workers
from tests.support import RedisServer

WORKER = "python manage.py rqworker"
SCHEDULER = "python manage.py rqscheduler --interval 1"
# Fast recovery settings for the processes these tests start.
FAULT_ENV = {"WATCHDOG_INTERVAL_MS": "500", "WATCHDOG_GRACE_MS": "1000"}


def record(name: str, seconds: float) -> None:
    """Keep a measured recovery time in test-output/measurements.jsonl."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUTPUT_DIR / "measurements.jsonl", "a") as out:
        out.write(
            json.dumps({"name": name, "seconds": round(seconds, 3), "at": time.time()})
        )
        out.write("\n")
    print(f"{name}: {seconds:.3f} s")


@pytest.fixture
def own_redis(settings):
    """A Redis with append-only persistence that the test may stop, restart, flush."""
    server = RedisServer(appendonly=True)
    server.start()
    queues = {
        name: {**config, "HOST": "127.0.0.1", "PORT": server.port, "DB": 0}
        for name, config in settings.RQ_QUEUES.items()
    }
    with override_settings(RQ_QUEUES=queues):
        yield server
    server.stop()


@pytest.fixture
def services_on(start_process):
    """Start n workers and n schedulers (with the fault-test settings)."""

    def start(*, workers: int = 1, schedulers: int = 1, **env):
        started = {}
        for i in range(schedulers):
            started[f"scheduler-{i}"] = start_process(
                f"scheduler-{i}", SCHEDULER, **FAULT_ENV, **env
            )
        for i in range(workers):
            started[f"worker-{i}"] = start_process(
                f"worker-{i}", WORKER, **FAULT_ENV, **env
            )
        wait_for_workers(workers)
        wait_for_schedulers(schedulers)
        return started

    return start
