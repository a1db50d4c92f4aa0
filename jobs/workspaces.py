"""Workspace rules, read from the database at most every WORKSPACE_CACHE_S a process.

Every schedule request needs its workspace's rules (time zone, quiet hours, rate
limit); a query each time took a quarter of a schedule request's time (py-spy). A
change in the admin applies at once in the process that saved it and within
WORKSPACE_CACHE_S in the others.
"""

import time

from django.conf import settings

from jobs.models import Workspace

CACHE_MAX = 10_000

# workspace id -> (time.monotonic() when read, the row or None)
_cache: dict[str, tuple[float, Workspace | None]] = {}


def workspace_rules(workspace_id) -> Workspace | None:
    """The workspace's row of sending rules, or None when it has none."""
    key = str(workspace_id)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is None or now - cached[0] > settings.WORKSPACE_CACHE_S:
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        cached = _cache[key] = (now, Workspace.objects.filter(workspace_id=key).first())
    return cached[1]


def forget_cached_workspaces() -> None:
    """Read the rules from the database again on next use."""
    _cache.clear()
