"""How long to wait before another attempt: the retry policy, in one place."""

from django.conf import settings


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based): base x 2^(n-1)."""
    return settings.JOB_BACKOFF_MS * 2 ** (attempt - 1) / 1000


def retry_wait_seconds(attempt: int, retry_after_s: float | None = None) -> float:
    """The backoff, or longer when the backend asked for it (Retry-After)."""
    return max(backoff_seconds(attempt), retry_after_s or 0.0)


def webhook_waits() -> list[float]:
    """The waits between the failure webhook's WEBHOOK_ATTEMPTS attempts."""
    return [backoff_seconds(n) for n in range(1, settings.WEBHOOK_ATTEMPTS)]
