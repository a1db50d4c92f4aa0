import os
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import override_settings
from django.utils.module_loading import import_string
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from jobs import apikeys
from jobs.broker import get_queue, get_scheduler, redis_connection
from jobs.processes.scheduler import PreciseScheduler
from jobs.services.holds import forget_cached_pauses
from jobs.workspaces import forget_cached_workspaces
from tests.support import (
    ROOT,
    RedisServer,
    ServiceClient,
    ServiceProcess,
    start_backend,
    wait_for,
)

OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output"))


@pytest.fixture(scope="session")
def redis_server():
    """A Redis of our own for the whole run, so tests never touch a shared one."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _queues_use_test_redis(redis_server):
    from django.conf import settings

    queues = {
        name: {**config, "HOST": "127.0.0.1", "PORT": redis_server.port, "DB": 0}
        for name, config in settings.RQ_QUEUES.items()
    }
    with override_settings(RQ_QUEUES=queues):
        yield


@pytest.fixture
def primary_and_replica():
    """A Redis primary of the test's own and one replica of it."""
    primary = RedisServer()
    primary.start()
    replica = RedisServer(replica_of=primary.port)
    replica.start()
    yield primary, replica
    replica.stop()
    primary.stop()


@pytest.fixture(autouse=True)
def redis(redis_server):
    """The test Redis, emptied before each test."""
    client = redis_connection()
    client.flushdb()
    return client


@pytest.fixture(autouse=True)
def _fresh_api_key_state():
    # The API remembers for a second whether keys exist; each test has its own table.
    apikeys.forget_cached_state()
    # Workspace rules too: tests create their own rows.
    forget_cached_workspaces()
    forget_cached_pauses()


@pytest.fixture
def backend(settings):
    backend, server = start_backend()
    settings.SMS_API_URL = backend.url
    settings.EMAIL_API_URL = backend.url
    yield backend
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_retries(settings):
    settings.JOB_ATTEMPTS = 3
    settings.JOB_BACKOFF_MS = 200
    settings.CALLBACK_TIMEOUT_MS = 1000


@pytest.fixture
def work(settings):
    """Run the real scheduler pass and a real RQ worker in this process until `until()`.

    Tests that use it need django_db(transaction=True): the worker recycles DB
    connections, which would break a test wrapped in a transaction.
    """

    def run(until, timeout: float = 15.0):
        # The worker class the Procfile runs (settings.RQ["WORKER_CLASS"]).
        worker_class = import_string(settings.RQ["WORKER_CLASS"])
        worker = worker_class(
            [get_queue(name) for name in settings.QUEUE_NAMES],
            connection=redis_connection(),
            serializer=JSONSerializer,  # for a stock RQ worker; ours forces it
        )
        scheduler = get_scheduler()

        def step():
            scheduler.move_due_jobs()
            worker.work(burst=True)
            return until()

        return wait_for(step, timeout=timeout, interval=0.02, message="jobs to finish")

    return run


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL, for worker processes started by tests."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"


@pytest.fixture
def service_env(redis_server, backend, settings):
    return {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": subprocess_database_url(),
        "SMS_API_URL": backend.url,
        "EMAIL_API_URL": backend.url,
        "JOB_ATTEMPTS": str(settings.JOB_ATTEMPTS),
        "JOB_BACKOFF_MS": str(settings.JOB_BACKOFF_MS),
        "CALLBACK_TIMEOUT_MS": str(settings.CALLBACK_TIMEOUT_MS),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


@pytest.fixture
def start_process(service_env, request):
    """Start real service processes as the Procfile does; stopped after the test."""
    started: list[ServiceProcess] = []
    log_dir = OUTPUT_DIR / "logs" / request.node.name.replace("/", "_")[:80]
    log_dir.mkdir(parents=True, exist_ok=True)

    def start(name: str, command: str, **extra_env) -> ServiceProcess:
        process = ServiceProcess(name, command, {**service_env, **extra_env}, log_dir)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_for_workers(count: int, timeout: float = 20.0) -> None:
    wait_for(
        lambda: len(SimpleWorker.all(connection=redis_connection())) >= count,
        timeout=timeout,
        message=f"{count} RQ worker(s) to register",
    )


def wait_for_schedulers(count: int = 1, timeout: float = 20.0) -> None:
    prefix = PreciseScheduler.redis_scheduler_namespace_prefix
    wait_for(
        lambda: len(redis_connection().keys(prefix + "*")) >= count,
        timeout=timeout,
        message=f"{count} scheduler(s) to start",
    )


@pytest.fixture
def client():
    """Django's test client, through the service's FastLane (tests.support)."""
    from django.test import Client

    test_client = Client()
    test_client.handler = ServiceClient(test_client.handler)
    return test_client
