"""Settings, every value from the environment with a default that runs on a laptop."""

from pathlib import Path

import dj_database_url
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ReadOnlyError
from redis.retry import Retry

from config.env import (
    env_base_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_path,
    env_secret_key,
    env_str,
    redis_config,
)
from config.logformat import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_secret_key("SECRET_KEY", debug=DEBUG)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    # Swagger UI's files, served by WhiteNoise: /api/docs loads nothing from a CDN.
    "drf_spectacular_sidecar",
    # Before django_rq: our rqworker/rqscheduler commands override its defaults.
    "jobs",
    "django_rq",
    "queueservices",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the dashboard's static files with DEBUG off too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The hot API endpoints' chain (config.apilane): MIDDLEWARE less what only pages
# need (static files, sessions, CSRF, users, messages).
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# The seed's clients call /api/schedule-sms without a trailing slash.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# SQLite under var/ by default; PostgreSQL (or anything dj-database-url reads)
# from DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'queueservices.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock up front, so concurrent workers wait on the
    # busy timeout instead of failing with "database is locked".
    # WAL lets readers run beside the writer, and synchronous=NORMAL skips the fsync
    # on every commit (still crash-safe in WAL mode; a power cut may lose the last
    # commits, which the API has not acknowledged yet... or has: use PostgreSQL in
    # production). A 16 MiB page cache (SQLite's default: 2) holds the upper levels
    # of the job table's dozen indexes, and checkpoints every 4,000 WAL pages (not
    # 1,000) copy back each page written more than once only once: together they
    # halve the time a 1,000-row insert holds the write lock (py-spy, 80 -> 40 ms).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
        "PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=4000;",
    }
    # A file, not :memory:, so the worker processes of end-to-end tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-queueservices.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve straight from the apps' static folders: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True

# --- HTTP API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["queueservices.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["queueservices.parsers.BoundedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["queueservices.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["queueservices.auth.ApiKeyWhenRequired"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "queueservices.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Queue Services API",
    "DESCRIPTION": "Schedule an SMS or email now; get called back at the due time.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Paths without their optional trailing slash, the seed's endpoints first, grouped
    # by tag (docs/api.md; docs/openapi.yaml is this schema, checked by a test).
    "PREPROCESSING_HOOKS": ["queueservices.schema.preprocess_paths"],
    # drf-spectacular's own enum hook, then the OpenAPI links between job operations.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "queueservices.schema.add_job_links",
    ],
    "SORT_OPERATIONS": False,
    # The order /api/docs shows its groups in (each view names its tag).
    "TAGS": [
        {"name": "Scheduling", "description": "Schedule SMS and emails."},
        {"name": "Jobs", "description": "Read, list, reschedule and cancel jobs."},
        {"name": "Campaigns", "description": "Every pending job of a campaign."},
        {"name": "Workspaces", "description": "Every pending job of a workspace."},
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
# Largest accepted request body; larger ones get 413.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 256 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# POST /api/schedule-batch: messages per request, and its own body limit (1,000
# emails of ~10 KB of html each; the JSON is parsed in memory, so keep it bounded).
BATCH_MAX_MESSAGES = env_int("BATCH_MAX_MESSAGES", 1000, minimum=1)
BATCH_MAX_REQUEST_BYTES = env_int(
    "BATCH_MAX_REQUEST_BYTES", 10 * 1024 * 1024, minimum=1024
)
# The request's URL (path and query) and its headers in all: larger ones get a 414
# or a 431 (config.limits), below granian's own limits, which answer without JSON.
MAX_URL_BYTES = env_int("MAX_URL_BYTES", 8 * 1024, minimum=1024)
MAX_HEADER_BYTES = env_int("MAX_HEADER_BYTES", 64 * 1024, minimum=4096)
MAX_DELAY_MS = env_int("MAX_DELAY_MS", 365 * 24 * 3600 * 1000, minimum=0)
# true, false, or auto: required once DEBUG is off and an API key exists.
API_KEYS_REQUIRED = env_choice("API_KEYS_REQUIRED", "auto", ["auto", "true", "false"])
# How long an Idempotency-Key keeps answering with its first job.
IDEMPOTENCY_TTL_S = env_int("IDEMPOTENCY_TTL_S", 24 * 3600, minimum=1)
# Browser front ends allowed to call /api/* (comma-separated origins).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key"]

# --- Queues (Redis, RQ, rq-scheduler) -------------------------------------------
REDIS = redis_config()
# Fail fast when Redis is unreachable: the API answers 503 within a few seconds
# instead of hanging (redis-py's default retries ten times). A retry reconnects:
# with Sentinel it asks the sentinels for the primary again, after a failover the
# new one; READONLY (a demoted primary) reconnects too, for an address that moves.
REDIS["CONNECTION_KWARGS" if "SENTINELS" in REDIS else "REDIS_CLIENT_KWARGS"] = {
    "socket_connect_timeout": 1,
    "socket_timeout": 3,
    "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
    "retry_on_error": [ReadOnlyError],
    "health_check_interval": 30,
}
if "SENTINELS" in REDIS:
    # A sentinel that is down is skipped at once for the next one (redis-py's
    # default waits seconds between retries of each).
    REDIS["SENTINEL_KWARGS"] |= {
        "socket_connect_timeout": 0.5,
        "socket_timeout": 1,
        "retry": Retry(NoBackoff(), 0),
    }
QUEUE_NAMES = [
    "send-sms-queue",
    "send-email-queue",
    "scheduled-sms-queue",
    "scheduled-email-queue",
    "my-queue",
]
RQ_QUEUES = {
    name: {
        **REDIS,
        "DEFAULT_TIMEOUT": 120,
        "SERIALIZER": "rq.serializers.JSONSerializer",
    }
    for name in QUEUE_NAMES
}
RQ = {
    # We order Redis writes after the database commit ourselves (jobs.services).
    "COMMIT_MODE": "auto",
    "JOB_CLASS": "jobs.broker.DeliveryJob",
    "WORKER_CLASS": "jobs.processes.worker.DeliveryWorker",
    "SCHEDULER_CLASS": "jobs.processes.scheduler.PreciseScheduler",
    "DEFAULT_RESULT_TTL": 3600,
}
RQ_SHOW_ADMIN_LINK = True

# --- Delivery -------------------------------------------------------------------
SMS_API_URL = env_base_url("SMS_API_URL", "http://localhost:4000")
EMAIL_API_URL = env_base_url("EMAIL_API_URL", "http://localhost:4000")
SMS_CALLBACK_ENDPOINT = env_path("SMS_CALLBACK_ENDPOINT", "/send-sms")
EMAIL_CALLBACK_ENDPOINT = env_path("EMAIL_CALLBACK_ENDPOINT", "/api/email/send")
QUEUE_WEBHOOK_ENDPOINT = env_path("QUEUE_WEBHOOK_ENDPOINT", "/api/queue-webhook")
JOB_ATTEMPTS = env_int("JOB_ATTEMPTS", 5, minimum=1)
JOB_BACKOFF_MS = env_int("JOB_BACKOFF_MS", 1000, minimum=0)
CALLBACK_TIMEOUT_MS = env_int("CALLBACK_TIMEOUT_MS", 10000, minimum=1)
# Secrets that sign every callback and webhook (comma-separated: rotation).
CALLBACK_SIGNING_SECRETS = env_list("CALLBACK_SIGNING_SECRET")
# Allow callback URLs on link-local / cloud metadata addresses (refused otherwise).
CALLBACK_ALLOW_LINK_LOCAL = env_bool("CALLBACK_ALLOW_LINK_LOCAL", False)
# Callbacks one worker process has in flight at once, and the most jobs it claims
# in one go (jobs.processes.engine). 500: a campaign of one workspace gets 250
# slots; with 50 (half of 100) a 5,000-callback burst took 1.9-2.2 s, with 250
# 1.3-1.4 s, and more did not help (bench/run.sh, one fast backend).
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 500, minimum=1)
WORKER_BATCH = env_int("WORKER_BATCH", 100, minimum=1)
# Of those slots, the most one workspace may hold (its other jobs wait in Redis):
# half by default, so a workspace whose backend hangs leaves the other half
# flowing. 0: no limit.
WORKER_MAX_SLOTS_PER_WORKSPACE = env_int(
    "WORKER_MAX_SLOTS_PER_WORKSPACE", max(1, WORKER_CONCURRENCY // 2), minimum=0
)
# Outcomes are recorded together every this many ms or outcomes, whichever first.
WORKER_FLUSH_MS = env_int("WORKER_FLUSH_MS", 5, minimum=0)
WORKER_FLUSH_MAX = env_int("WORKER_FLUSH_MAX", 200, minimum=1)
# Messages per second to the backend for a workspace whose row sets no limit
# (jobs.ratelimit); 0: unlimited.
WORKSPACE_RATE_LIMIT = env_int("WORKSPACE_RATE_LIMIT", 0, minimum=0)
# Workspace rules (time zone, quiet hours, rate limit) are read from the database at
# most this often per process: a change in the admin applies within this time.
WORKSPACE_CACHE_S = env_int("WORKSPACE_CACHE_MS", 5000, minimum=0) / 1000
# Attempts to deliver the failure webhook itself.
WEBHOOK_ATTEMPTS = env_int("WEBHOOK_ATTEMPTS", 5, minimum=1)

# --- Recovery -------------------------------------------------------------------
# An attempt still active this long after it started is taken as lost (its worker
# died or hung) and run again. A worker seen dead is caught sooner.
JOB_STALL_TIMEOUT_MS = env_int("JOB_STALL_TIMEOUT_MS", 30000, minimum=1000)
# How often the scheduler's watchdog compares the Job table with Redis.
WATCHDOG_INTERVAL_MS = env_int("WATCHDOG_INTERVAL_MS", 5000, minimum=100)
# A pending job overdue by more than this and missing from Redis is re-enqueued.
WATCHDOG_GRACE_MS = env_int("WATCHDOG_GRACE_MS", 10000, minimum=0)

# --- Dashboard ------------------------------------------------------------------
BULL_BOARD_USERNAME = env_str("BULL_BOARD_USERNAME", "admin")
BULL_BOARD_PASSWORD = env_str("BULL_BOARD_PASSWORD", "admin123")

# --- Web server (read by the Procfile / config/serve.py) ----------------------
PORT = env_int("PORT", 3000, minimum=1)
HOST = env_str("HOST", "0.0.0.0")

# One line per event: LOG_FORMAT=text (default) or json (one object per line).
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ["text", "json"])
LOGGING = logging_config(LOG_FORMAT, env_str("LOG_LEVEL", "INFO"))
