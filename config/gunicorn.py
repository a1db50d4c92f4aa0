"""gunicorn settings for the Procfile's web process (HOST/PORT as in the seed)."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"
# Many small requests, each mostly waiting on Redis and the database: threads.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = 30
graceful_timeout = 20
accesslog = "-" if os.environ.get("ACCESS_LOG", "").lower() in ("1", "true") else None
