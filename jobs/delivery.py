"""Calling the customer's backend: URLs, bodies, one POST, and what it meant."""

import json
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import requests
from django.conf import settings
from django.utils import timezone

USER_AGENT = "queue-services/1"
# Enough of a failing backend's answer to diagnose it, not to store a page.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Outcome:
    ok: bool
    http_status: int | None
    error: str
    started_at: datetime
    duration_ms: int


def backend_base_url(job_type: str) -> str:
    return settings.SMS_API_URL if job_type == "sms" else settings.EMAIL_API_URL


def callback_url(job_type: str, metadata: dict) -> str:
    """The backend URL plus metadata.callbackEndpoint, or the type's default path.

    The endpoint was validated as a plain path at the API, so the host is always
    the configured backend's.
    """
    default = (
        settings.SMS_CALLBACK_ENDPOINT
        if job_type == "sms"
        else settings.EMAIL_CALLBACK_ENDPOINT
    )
    return backend_base_url(job_type) + (metadata.get("callbackEndpoint") or default)


def webhook_url(job_type: str) -> str:
    return backend_base_url(job_type) + settings.QUEUE_WEBHOOK_ENDPOINT


@lru_cache(maxsize=1)
def http_session() -> requests.Session:
    """One pooled keep-alive session per process (workers do not fork per job)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4, pool_maxsize=32, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def post_json(url: str, body: dict, headers: dict[str, str]) -> Outcome:
    """POST `body` as JSON; any 2xx is success, everything else is a failed attempt."""
    started_at, started = timezone.now(), time.monotonic()
    timeout = settings.CALLBACK_TIMEOUT_MS / 1000
    try:
        response = http_session().post(
            url,
            data=json.dumps(body, separators=(",", ":")),
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout,
            # A redirect could lead to another host; the backend must answer itself.
            allow_redirects=False,
        )
    except requests.Timeout:
        error = f"timed out after {timeout:g} s"
        return Outcome(False, None, error, started_at, _ms_since(started))
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return Outcome(False, None, error, started_at, _ms_since(started))
    ok = 200 <= response.status_code < 300
    error = (
        "" if ok else f"HTTP {response.status_code}: {response.text[:MAX_ERROR_CHARS]}"
    )
    return Outcome(ok, response.status_code, error, started_at, _ms_since(started))


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
