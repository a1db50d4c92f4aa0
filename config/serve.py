"""The Procfile's web process: granian serving config.wsgi on $HOST:$PORT.

granian (a Rust HTTP server) in place of gunicorn's gthread workers: 1.68 against
2.83 ms of web CPU per schedule request under the load harness, 661 against 430
requests/s (issue 12). The environment is read as config/gunicorn.py read it:
HOST (0.0.0.0), PORT (3000), WEB_CONCURRENCY processes (2), WEB_THREADS threads
each (32), ACCESS_LOG. SIGHUP restarts the workers one by one; SIGTERM lets
requests in flight finish (within GRACEFUL_TIMEOUT_S, 20) before stopping.
"""

import json
import os
import shutil
import sys
import tempfile


def granian_args(env=os.environ) -> list[str]:
    access_log = env.get("ACCESS_LOG", "").lower() in ("1", "true")
    return [
        "granian", "--interface", "wsgi", "config.wsgi:application",
        "--host", env.get("HOST", "0.0.0.0"), "--port", env.get("PORT") or "3000",
        "--workers", env.get("WEB_CONCURRENCY", "2"),
        # 32 threads, not 8: a schedule request's delay counts from when a thread
        # reads it, and one waiting in granian for a free thread was sent that much
        # late (harness spread scenario: lateness p99 94 -> 40-55 ms; 64 threads
        # 34 ms, but two processes would hold 128 PostgreSQL connections).
        "--blocking-threads", env.get("WEB_THREADS", "32"),
        "--workers-kill-timeout", env.get("GRACEFUL_TIMEOUT_S", "20"),
        "--no-ws", "--access-log" if access_log else "--no-access-log",
    ]  # fmt: skip


def log_config_file() -> str:
    """The service's logging (LOG_FORMAT, one line per event, redaction) for
    granian's own lines too, as the JSON file granian reads."""
    from django.conf import settings

    with tempfile.NamedTemporaryFile(
        "w", prefix="qs-log-", suffix=".json", delete=False
    ) as out:
        json.dump(settings.LOGGING, out)
    return out.name


if __name__ == "__main__":
    from config.startup import load_settings_or_exit

    # Refuse a bad environment here, once, with one line (SECRET_KEY and the rest).
    load_settings_or_exit()
    args = granian_args() + ["--log-config", log_config_file()]
    # The granian next to this Python (the virtual environment's), else on PATH.
    here = os.path.join(os.path.dirname(sys.executable), "granian")
    os.execv(here if os.path.exists(here) else shutil.which("granian"), args)
