"""Who may use the operator pages: HTTP basic auth with the dashboard credentials
(BULL_BOARD_USERNAME / BULL_BOARD_PASSWORD, as in the seed) or a staff session."""

import base64
import binascii
import hashlib
import hmac
from functools import wraps

from django.conf import settings
from django.http import HttpResponse

REALM = "Queue Services dashboard"


def _same(given: str, expected: str) -> bool:
    # Digests have one length, so the comparison time says nothing about either.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )


def basic_auth_user(request) -> str | None:
    """The dashboard user name when the request carries the right credentials."""
    scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic" or not settings.BULL_BOARD_PASSWORD:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    user_ok = _same(username, settings.BULL_BOARD_USERNAME)
    password_ok = _same(password, settings.BULL_BOARD_PASSWORD)
    return username if user_ok and password_ok else None


def dashboard_actor(request) -> str | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return user.get_username()
    return basic_auth_user(request)


def dashboard_required(view):
    """401 with a basic-auth challenge unless the request may use the dashboard."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        actor = dashboard_actor(request)
        if actor is None:
            response = HttpResponse("Authentication required.\n", status=401)
            response["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
            return response
        request.dashboard_actor = actor
        return view(request, *args, **kwargs)

    return guarded
