"""Start-up checks of what delivery depends on: where callbacks go, and Redis."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

# The Redis settings concern the deployment, not each process: registered as
# deployment checks, run by `migrate` (release, web) and `check --deploy`, not by
# every worker and scheduler at start.
DEPLOYMENT_TAG = "queue-deployment"

# Cloud metadata services: a callback there would hand out the host's credentials.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_link_local or ip in METADATA_ADDRESSES


@register()
def callback_targets(app_configs, **kwargs):
    """Refuse a backend URL that resolves to link-local or cloud metadata addresses."""
    if settings.CALLBACK_ALLOW_LINK_LOCAL:
        return []
    errors = []
    for name in ("SMS_API_URL", "EMAIL_API_URL"):
        host = urlsplit(getattr(settings, name)).hostname
        if not host:
            continue
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except (socket.gaierror, UnicodeError):
            continue  # unresolvable now; delivery will fail visibly and retry
        if any(_forbidden(address) for address in addresses):
            errors.append(
                Error(
                    f"{name} ({host}) resolves to a link-local or cloud metadata "
                    "address.",
                    hint="Point it at your backend, or set "
                    "CALLBACK_ALLOW_LINK_LOCAL=true.",
                    id="jobs.E001",
                )
            )
    return errors


@register(DEPLOYMENT_TAG, deploy=True)
def redis_settings(app_configs, **kwargs):
    """Warn about Redis settings that lose jobs or expose them."""
    from redis.exceptions import RedisError

    from jobs.broker import redis_connection

    config = settings.RQ_QUEUES[settings.QUEUE_NAMES[0]]
    try:
        client = redis_connection()
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        aof = client.config_get("appendonly").get("appendonly")
        save = client.config_get("save").get("save")
    except RedisError as exc:
        return [Warning(f"Could not check the Redis settings: {exc}", id="jobs.W001")]
    warnings = []
    if policy and policy != "noeviction":
        warnings.append(
            Warning(
                f"Redis maxmemory-policy is {policy}: under memory pressure it "
                "evicts jobs.",
                hint="Set maxmemory-policy noeviction on the queue Redis.",
                id="jobs.W002",
            )
        )
    if aof != "yes" and not save:
        warnings.append(
            Warning(
                "Redis keeps nothing on disk: a restart loses every pending job.",
                hint="Turn on appendonly yes (the watchdog re-places pending jobs "
                "from the database after a restart, one Redis check per job).",
                id="jobs.W003",
            )
        )
    # With Sentinel the primary's address comes from the sentinels: theirs tell.
    hosts = [host for host, _ in config.get("SENTINELS", [])] or [config.get("HOST")]
    host = next((h for h in hosts if h not in ("localhost", "127.0.0.1", "::1")), "")
    if not config.get("PASSWORD") and host:
        warnings.append(
            Warning(
                f"Redis at {host} is used without a password.",
                hint="Anyone who can write to Redis can run code in the workers: "
                "set a password (REDIS_URL redis://:password@host) or an ACL.",
                id="jobs.W004",
            )
        )
    if not settings.DEBUG and not settings.CALLBACK_SIGNING_SECRETS:
        warnings.append(
            Warning(
                "Callbacks are not signed: CALLBACK_SIGNING_SECRET is empty.",
                hint="Set it so your backend can tell our callbacks from forgeries.",
                id="jobs.W005",
            )
        )
    return warnings
