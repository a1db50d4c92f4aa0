"""A bad environment stops a process with one line naming the variable, not a
traceback (manage.py and the web server's launcher read the settings through this)."""

import os
import sys


def load_settings_or_exit() -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        settings.INSTALLED_APPS  # noqa: B018 - imports config.settings
    except ImproperlyConfigured as exc:
        sys.exit(f"Configuration error: {exc}")
