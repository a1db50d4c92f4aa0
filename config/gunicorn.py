"""gunicorn settings for the Procfile's web process (HOST/PORT as in the seed)."""

import os

from config.startup import load_settings_or_exit

# Refuse a bad environment in the master, once, instead of in each worker's boot.
load_settings_or_exit()

from django.conf import settings  # noqa: E402 - after the check above

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"
# Many small requests, each mostly waiting on Redis and the database: threads.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = 30
graceful_timeout = 20
accesslog = "-" if os.environ.get("ACCESS_LOG", "").lower() in ("1", "true") else None
# gunicorn's own lines in the service's format (LOG_FORMAT), one per event.
logconfig_dict = settings.LOGGING
