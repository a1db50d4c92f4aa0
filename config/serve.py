"""The Procfile's web process: granian serving config.wsgi on $HOST:$PORT.

granian (a Rust HTTP server) in place of gunicorn's gthread workers: 1.68 against
2.83 ms of web CPU per schedule request under the load harness, 661 against 430
requests/s (issue 12). The environment is read as config/gunicorn.py read it:
HOST (0.0.0.0), PORT (3000), WEB_CONCURRENCY processes (2), WEB_THREADS threads
each (8), ACCESS_LOG. SIGHUP restarts the workers one by one; SIGTERM lets
requests in flight finish (within GRACEFUL_TIMEOUT_S, 20) before stopping.
"""

import os
import shutil
import sys


def granian_args(env=os.environ) -> list[str]:
    access_log = env.get("ACCESS_LOG", "").lower() in ("1", "true")
    return [
        "granian", "--interface", "wsgi", "config.wsgi:application",
        "--host", env.get("HOST", "0.0.0.0"), "--port", env.get("PORT") or "3000",
        "--workers", env.get("WEB_CONCURRENCY", "2"),
        "--blocking-threads", env.get("WEB_THREADS", "8"),
        "--workers-kill-timeout", env.get("GRACEFUL_TIMEOUT_S", "20"),
        "--no-ws", "--access-log" if access_log else "--no-access-log",
    ]  # fmt: skip


if __name__ == "__main__":
    args = granian_args()
    # The granian next to this Python (the virtual environment's), else on PATH.
    here = os.path.join(os.path.dirname(sys.executable), "granian")
    os.execv(here if os.path.exists(here) else shutil.which("granian"), args)
