"""API keys: issued once in clear, kept as a SHA-256 hash, looked up by prefix."""

import hashlib
import hmac
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import ApiKey

KEY_PREFIX = "qs_"
PREFIX_HEX = 8
KEYS_CHECK_EVERY_S = 1.0
# last_used_at is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def apikey_create(*, name: str, workspace_id: str = "") -> tuple[ApiKey, str]:
    """A new key; the clear key is returned once and never stored."""
    prefix = KEY_PREFIX + secrets.token_hex(PREFIX_HEX // 2)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=_hash(key), workspace_id=workspace_id
    )
    forget_cached_state()
    return api_key, key


def apikey_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at=None).update(
        revoked_at=timezone.now()
    )


def apikey_check(key: str) -> ApiKey | None:
    """The active key matching `key`, or None."""
    prefix = key[: len(KEY_PREFIX) + PREFIX_HEX]
    api_key = ApiKey.objects.filter(prefix=prefix, revoked_at=None).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _hash(key)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > TOUCH_EVERY:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def keys_required() -> bool:
    """API_KEYS_REQUIRED: true, false, or auto (the default): required once DEBUG is
    off and at least one key exists, so a fresh install keeps the seed's open API."""
    mode = settings.API_KEYS_REQUIRED
    if mode != "auto":
        return mode == "true"
    return not settings.DEBUG and _active_keys_exist()


_known = {"at": 0.0, "exist": False}


def forget_cached_state() -> None:
    """Look at the key table again on the next request (tests roll it back)."""
    _known["at"] = 0.0


def _active_keys_exist() -> bool:
    # Asked on every API request: look at the table at most once a second. A key
    # created in the admin is enforced within that second.
    now = time.monotonic()
    if now - _known["at"] > KEYS_CHECK_EVERY_S:
        _known["exist"] = ApiKey.objects.filter(revoked_at=None).exists()
        _known["at"] = now
    return _known["exist"]
