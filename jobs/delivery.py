"""Calling the customer's backend: URLs, bodies, one POST, and what it meant.

Two transports for the same request and the same reading of the answer: aiohttp
on one asyncio loop for the worker's callbacks (jobs.processes.engine: 0.09 ms of
CPU per POST against 0.9 ms for requests with threads, measured with
../shared/bench/http_clients.py), requests for the failure webhook (an ordinary
RQ job) and a stock RQ worker's one job at a time.
"""

import json
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

import aiohttp
import requests
from django.conf import settings
from django.utils import timezone

from jobs import signing

USER_AGENT = "queue-services/1"
# Enough of a failing backend's answer to diagnose it, not to store a page.
MAX_ERROR_CHARS = 500
# A backend that answers this (or sends `X-Queue-Retry: false`) will never accept
# the message: the job fails at once instead of retrying.
PERMANENT_FAILURE_STATUS = 422
# Retry-After is honoured on these, up to an hour.
BACKPRESSURE_STATUSES = {429, 503}
MAX_RETRY_AFTER_S = 3600


@dataclass(frozen=True)
class Outcome:
    ok: bool
    http_status: int | None
    error: str
    started_at: datetime
    duration_ms: int
    # The backend asked not to be called again before this many seconds.
    retry_after_s: float | None = None
    # The backend will never accept this message: do not retry.
    permanent: bool = False
    # No answer because the worker died or hung (the watchdog wrote it off): not
    # the backend's fault, so the retry waits for no backoff.
    lost: bool = False


def failed_outcome(error: str) -> Outcome:
    """An attempt that failed before any answer (no HTTP status)."""
    return Outcome(False, None, error[:MAX_ERROR_CHARS], timezone.now(), 0)


def backend_base_url(job_type: str) -> str:
    return settings.SMS_API_URL if job_type == "sms" else settings.EMAIL_API_URL


def callback_url(job_type: str, metadata: dict) -> str:
    """The backend URL plus metadata.callbackEndpoint, or the type's default path.

    The endpoint was validated as a plain path at the API, so the host is always
    the configured backend's.
    """
    return callback_urls()(job_type, metadata)


def callback_urls():
    """callback_url for many jobs: the settings read once (a batch's jobs read
    them thousands of times, each read a lookup through Django's settings)."""
    bases = {
        "sms": (settings.SMS_API_URL, settings.SMS_CALLBACK_ENDPOINT),
        "email": (settings.EMAIL_API_URL, settings.EMAIL_CALLBACK_ENDPOINT),
    }

    def url(job_type: str, metadata: dict) -> str:
        base, default = bases["sms" if job_type == "sms" else "email"]
        return base + (metadata.get("callbackEndpoint") or default)

    return url


def webhook_url(job_type: str) -> str:
    return backend_base_url(job_type) + settings.QUEUE_WEBHOOK_ENDPOINT


@lru_cache(maxsize=1)
def http_session() -> requests.Session:
    """One pooled keep-alive session per process (workers do not fork per job)."""
    session = requests.Session()
    # No proxy or .netrc lookups from the environment on every call: they cost more
    # than the callback itself, and the backend URL is configuration, not environment.
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4, pool_maxsize=32, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def deliver_job(job) -> Outcome:
    """One callback for a Job row, with requests (a stock RQ worker's path)."""
    return post_json(*_callback(job))


async def deliver_job_async(session: aiohttp.ClientSession, job) -> Outcome:
    """One callback for a Job row, on the caller's asyncio loop (our worker)."""
    url, body, headers, message_id = _callback(job)
    data, headers = _signed(body, headers, message_id)
    started_at, started = timezone.now(), time.monotonic()
    timeout = settings.CALLBACK_TIMEOUT_MS / 1000
    try:
        async with session.post(
            url, data=data, headers=headers, allow_redirects=False
        ) as response:
            if 200 <= response.status < 300:
                await response.read()  # the connection is reused once it is read
                text = ""
            else:
                text = await response.text(errors="replace")
            return _classify(
                response.status, response.headers, text, started_at, _ms_since(started)
            )
    except TimeoutError:
        error = f"timed out after {timeout:g} s"
        return Outcome(False, None, error, started_at, _ms_since(started))
    except aiohttp.ClientError as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return Outcome(False, None, error, started_at, _ms_since(started))


def http_session_async(concurrency: int) -> aiohttp.ClientSession:
    """A pooled keep-alive session for the running loop: up to `concurrency`
    connections per backend origin, no proxy lookups from the environment."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=concurrency),
        timeout=aiohttp.ClientTimeout(total=settings.CALLBACK_TIMEOUT_MS / 1000),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def _callback(job) -> tuple[str, dict, dict[str, str], str]:
    """A Job row's callback: URL, its payload plus jobId, id and attempt headers."""
    headers = {"X-Queue-Job-Id": str(job.id), "X-Queue-Attempt": str(job.attempts)}
    body = {**job.payload, "jobId": str(job.id)}
    return job.callback_url, body, headers, str(job.id)


def _signed(body: dict, headers: dict[str, str], message_id: str):
    data = json.dumps(body, separators=(",", ":")).encode()
    return data, {
        "Content-Type": "application/json",
        **headers,
        **signing.signature_headers(message_id, data),
    }


def post_json(
    url: str, body: dict, headers: dict[str, str], message_id: str
) -> Outcome:
    """POST `body` as signed JSON; 2xx is success, anything else a failed attempt."""
    data, headers = _signed(body, headers, message_id)
    started_at, started = timezone.now(), time.monotonic()
    timeout = settings.CALLBACK_TIMEOUT_MS / 1000
    try:
        # A redirect could lead to another host; the backend must answer itself.
        response = http_session().post(
            url, data=data, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.Timeout:
        error = f"timed out after {timeout:g} s"
        return Outcome(False, None, error, started_at, _ms_since(started))
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return Outcome(False, None, error, started_at, _ms_since(started))
    return _classify(
        response.status_code,
        response.headers,
        response.text,
        started_at,
        _ms_since(started),
    )


def _classify(
    status: int, headers, text: str, started_at: datetime, duration_ms: int
) -> Outcome:
    """What an answer means: 2xx delivered; 422 or `X-Queue-Retry: false` never
    (no retry); 429/503 retried no sooner than their Retry-After; else retried."""
    if 200 <= status < 300:
        return Outcome(True, status, "", started_at, duration_ms)
    no_retry = headers.get("X-Queue-Retry", "").lower() == "false"
    return Outcome(
        False,
        status,
        f"HTTP {status}: {text[:MAX_ERROR_CHARS]}",
        started_at,
        duration_ms,
        retry_after_s=_retry_after(headers)
        if status in BACKPRESSURE_STATUSES
        else None,
        permanent=status == PERMANENT_FAILURE_STATUS or no_retry,
    )


def _retry_after(headers) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped."""
    raw = headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(raw) - timezone.now()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
