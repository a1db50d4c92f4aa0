"""Typed readers for environment variables.

A bad value stops start-up with a message that names the variable, instead of
surfacing later as a confusing error deep inside a worker.
"""

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"


def env_secret_key(name: str, *, debug: bool) -> str:
    """The key that signs sessions and CSRF tokens; the development default only
    with DEBUG on (with it off, anyone could forge an admin session)."""
    value = env_str(name).strip()
    if value and value != DEV_SECRET_KEY:
        return value
    if debug:
        return DEV_SECRET_KEY
    raise ImproperlyConfigured(
        f"{name} is {'the development default' if value else 'empty'} while DEBUG "
        f"is off: set {name} to a long random value."
    )


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: list[str]) -> str:
    value = env_str(name, default).strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name} must be one of {', '.join(choices)}; got {value!r}"
        )
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_base_url(name: str, default: str) -> str:
    """An http(s) base URL without a trailing slash (paths are appended to it)."""
    raw = env_str(name, default).strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, got {raw!r}")
    if parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name} must not have a query or fragment")
    return raw.rstrip("/")


def env_path(name: str, default: str) -> str:
    raw = env_str(name, default).strip()
    if not raw.startswith("/") or raw.startswith("//"):
        raise ImproperlyConfigured(
            f"{name} must be a path starting with '/', got {raw!r}"
        )
    return raw


def redis_config() -> dict:
    """django-rq connection settings: from REDIS_SENTINELS when set (the primary is
    asked of Redis Sentinel), else REDIS_URL, else REDIS_HOST/REDIS_PORT.

    The URL is split into parts here because django-rq ignores client keyword
    arguments (timeouts) for URL configurations.
    """
    if env_str("REDIS_SENTINELS").strip():
        return sentinel_config()
    url = env_str("REDIS_URL").strip()
    if not url:
        return {
            "HOST": env_str("REDIS_HOST", "localhost"),
            "PORT": env_int("REDIS_PORT", 6379, minimum=1),
            "DB": env_int("REDIS_DB", 0, minimum=0),
            "PASSWORD": env_str("REDIS_PASSWORD") or None,
        }
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ImproperlyConfigured(
            f"REDIS_URL must be redis:// or rediss://, got {url!r}"
        )
    try:
        port = parts.port or 6379
        db = int(parts.path.strip("/") or 0)
    except ValueError:
        raise ImproperlyConfigured(f"REDIS_URL has a bad port or db: {url!r}") from None
    return {
        "HOST": parts.hostname,
        "PORT": port,
        "DB": db,
        "USERNAME": parts.username or None,
        "PASSWORD": parts.password or None,
        "SSL": parts.scheme == "rediss",
    }


def sentinel_config() -> dict:
    """django-rq's Sentinel settings: the sentinels, the name they monitor, and the
    primary's db and password (REDIS_DB, REDIS_PASSWORD). django-rq takes client
    keyword arguments as CONNECTION_KWARGS here (config/settings.py adds them)."""
    return {
        "SENTINELS": env_host_ports("REDIS_SENTINELS"),
        "MASTER_NAME": env_str("REDIS_SENTINEL_MASTER", "mymaster").strip()
        or "mymaster",
        "DB": env_int("REDIS_DB", 0, minimum=0),
        "PASSWORD": env_str("REDIS_PASSWORD") or None,
        "SENTINEL_KWARGS": {"password": env_str("REDIS_SENTINEL_PASSWORD") or None},
    }


def env_host_ports(name: str) -> list[tuple[str, int]]:
    """Comma-separated host:port pairs (IPv6 in brackets: [::1]:26379)."""
    pairs = []
    for item in env_list(name):
        host, sep, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        valid = sep and host and port.isdigit() and 0 < int(port) < 65536
        if not valid or any(c in host for c in "/@ []"):
            raise ImproperlyConfigured(
                f"{name} must be comma-separated host:port pairs, got {item!r}"
            )
        pairs.append((host, int(port)))
    if not pairs:
        raise ImproperlyConfigured(f"{name} names no host:port")
    return pairs
