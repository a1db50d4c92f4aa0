"""Signed callbacks, the Standard Webhooks way (https://www.standardwebhooks.com/).

Every callback and webhook carries `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. With
several secrets in CALLBACK_SIGNING_SECRET (comma-separated, for rotation) there is
one signature per secret, space-separated; a backend accepts any it can verify.
"""

import base64
import hashlib
import hmac
import time

from django.conf import settings

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(message_id: str, body: bytes) -> dict[str, str]:
    secrets = settings.CALLBACK_SIGNING_SECRETS
    if not secrets:
        return {}
    timestamp = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets
        ),
    }
