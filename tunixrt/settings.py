"""tunix-rt settings, driven by environment variables (see README "Configuration").

With nothing configured the app runs on the embedded default: SQLite in the data folder and
Celery tasks executed in-process. DATABASE_URL and CELERY_BROKER_URL switch to the production
shape (PostgreSQL + Redis-backed workers).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from tunixrt.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("TUNIXRT_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Built dataset versions are runtime output: under the data folder, not beside the committed eval sets
# in the source tree's datasets/.
DATASETS_DIR = Path(env_str("TUNIXRT_DATASETS_DIR", str(DATA_DIR / "datasets"))).resolve()
RUNS_DIR = Path(env_str("TUNIXRT_RUNS_DIR", str(DATA_DIR / "runs"))).resolve()
# Gemma weights live here; a run's `model_dir` names a folder inside it (never an arbitrary path).
MODELS_DIR = Path(env_str("TUNIXRT_MODELS_DIR", str(DATA_DIR / "models"))).resolve()
# Where the files every host needs live (apps.core.store): unset = this host's folders above; a folder
# all hosts mount (`/mnt/tunixrt`, `file:///mnt/tunixrt`) or `s3://bucket/prefix` when the web and the
# workers run on different machines (then RUNS_DIR is each worker's local scratch).
ARTIFACT_STORE_URL = env_str("ARTIFACT_STORE_URL", "")
# How long a job keeps retrying a store that went away before it goes back to the queue.
STORE_OUTAGE_SECONDS = env_float("STORE_OUTAGE_SECONDS", 120.0)
# The trainer, evaluator and checkpoint check are child processes: they record and find a Tunix run's base
# weights by their name inside this folder (training.base_weights), never by a server path.
os.environ.setdefault("TUNIXRT_MODELS_DIR", str(MODELS_DIR))

# Demo mode is the one place an insecure secret key is acceptable; the system check
# `tunixrt.E001` refuses to start anything else with it.
DEMO_MODE = env_bool("TUNIXRT_DEMO", False)
INSECURE_DEMO_SECRET_KEY = "insecure-demo-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY") or INSECURE_DEMO_SECRET_KEY
DEBUG = env_bool("DEBUG", DEMO_MODE)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.traces",
    "apps.datasets",
    "apps.runs",
    "apps.evaluations",
    "apps.sweeps",
    "apps.registry",
    "apps.serving",
    "apps.pipeline",
]

MIDDLEWARE = [
    "apps.core.metrics.RequestMetricsMiddleware",
    "apps.core.middleware.InputGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tunixrt.urls"
WSGI_APPLICATION = "tunixrt.wsgi.application"

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A database that stops answering (a partition, not a refused port) costs a connect at most this long,
        # and keepalives notice a dead connection instead of waiting on it for TCP's many minutes.
        DATABASES["default"].setdefault("OPTIONS", {}).update({
            "connect_timeout": env_int("DB_CONNECT_TIMEOUT_S", 5, minimum=1),
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3})
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "tunixrt.sqlite3",
            # The web app, the worker and the launcher share one file: WAL lets readers work beside a
            # writer, IMMEDIATE transactions take the write lock up front (no upgrade deadlocks), and
            # a busy lock is waited for instead of failing.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and not DEMO_MODE)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)
# HTTPS in production (README "Production shape"): off by default because only the operator knows the
# site is served over TLS; `manage.py check --deploy` warns until they are set.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):  # behind a TLS-terminating proxy that sets X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Request size limits (SPEC §2.1). Django's own cap is set to the largest request we accept so
# that our parsers, not Django, decide and answer with a 413 naming the limit.
TRACE_MAX_BYTES = env_int("TRACE_MAX_BYTES", 1024 * 1024, minimum=1024)
TRACE_BATCH_MAX_ITEMS = env_int("TRACE_BATCH_MAX_ITEMS", 1000, minimum=1)
TRACE_BATCH_MAX_BYTES = env_int("TRACE_BATCH_MAX_BYTES", 32 * 1024 * 1024, minimum=1024)
INGEST_MAX_BYTES = env_int("INGEST_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
# POST /api/tunix/runs/import: a run trained elsewhere, with its metrics, predictions and checkpoint archive.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 512 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(TRACE_BATCH_MAX_BYTES, INGEST_MAX_BYTES)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# A shared cache (Redis) lets every process reuse API-key lookups and trace read pages, kept exact
# by explicit invalidation (apps/core/readcache.py). Without one, both caches stay off: a
# per-process cache never hears other processes' writes or revocations.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} must be a redis:// or rediss:// URL.")
# A cache that stops answering (a dropped route, not a refused port) must cost a request at most this
# long before it falls back to the database; a healthy one answers in well under a millisecond.
CACHE_TIMEOUT_S = env_float("CACHE_TIMEOUT_S", 0.5, minimum=0.01) if CACHE_URL else 0.0
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "apps.core.cache_backend.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "tunixrt", "OPTIONS": {"socket_connect_timeout": CACHE_TIMEOUT_S,
                                                               "socket_timeout": CACHE_TIMEOUT_S}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
READ_CACHE_SECONDS = env_int("READ_CACHE_SECONDS", 300 if CACHE_URL else 0, minimum=0)
# Bounds how long a permission change made through a group takes to reach an API key.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 60 if CACHE_URL else 0, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.core.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.LimitedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.error_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.ApiKeyWriteThrottle"],
    # Writes per API key; e.g. "600/min". A batch of 1,000 traces is one write.
    "DEFAULT_THROTTLE_RATES": {"key_writes": env_str("API_WRITE_RATE", "600/min")},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "tunix-rt API",
    "DESCRIPTION": "Reasoning traces, datasets, training runs, evaluations and the model registry.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "apps.core.openapi.add_error_responses"],
    # Several fields are called "status" with different choice sets; name each set once.
    "ENUM_NAME_OVERRIDES": {
        "TraceStatusEnum": "apps.traces.models.TraceStatus",
        "JobStatusEnum": "apps.core.models.JobStatus",
        "RunAlgorithmEnum": "apps.runs.models.Algorithm",
        "ReviewStatusEnum": ["approved", "rejected", "needs_review"],
    },
}

# Celery. Without a broker URL the embedded default keeps its queue in files under the data folder
# (kombu's filesystem transport): no server to run, and `make serve` starts a worker beside the web
# app, so training never runs inside a web request. CELERY_TASK_ALWAYS_EAGER=1 runs tasks in-process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
BROKER_DIR = DATA_DIR / "broker"
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "apps.sweeps.tasks.sweeps_reconcile_task": {"queue": "default"},
    "apps.runs.tasks.training_run_task": {"queue": "train"},
    "apps.evaluations.tasks.*": {"queue": "eval"},
}
CELERY_TASK_ACKS_LATE = True
# A task whose worker process died is requeued; the job row, not the broker, decides whether work happens.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
if CELERY_BROKER_URL.startswith("filesystem://"):
    (BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    # The exchange tables too (kombu's default is ./control in whatever folder a worker starts from).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(BROKER_DIR / "queue"),
                                       "data_folder_out": str(BROKER_DIR / "queue"),
                                       "control_folder": str(BROKER_DIR / "control"), "store_processed": False}
BROKER_HEALTH_TIMEOUT_S = env_int("BROKER_HEALTH_TIMEOUT_S", 2, minimum=1)

# Background jobs (apps/core/jobs.py): workers beat every JOB_HEARTBEAT_SECONDS; the reaper counts a
# running job lost after JOB_STALE_SECONDS without a beat, and sends a queued job's task again after
# JOB_REQUEUE_SECONDS (its message may have been lost; a duplicate is harmless).
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 5, minimum=1)
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 60, minimum=2)
JOB_REQUEUE_SECONDS = env_int("JOB_REQUEUE_SECONDS", 600, minimum=1)
JOB_REAP_INTERVAL_SECONDS = env_int("JOB_REAP_INTERVAL_SECONDS", 30, minimum=1)
if JOB_STALE_SECONDS <= 2 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_STALE_SECONDS={JOB_STALE_SECONDS} must exceed twice JOB_HEARTBEAT_SECONDS={JOB_HEARTBEAT_SECONDS}, "
        "or healthy jobs would be reaped between two beats.")
# A worker that cannot renew its claim for this long (the database is unreachable from it) stops its child
# and gives up: shorter than JOB_STALE_SECONDS by at least one beat, so it is gone before the reaper can
# hand the job to another attempt.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", JOB_STALE_SECONDS // 2, minimum=1)
if JOB_LEASE_SECONDS >= JOB_STALE_SECONDS - JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_LEASE_SECONDS={JOB_LEASE_SECONDS} must be below JOB_STALE_SECONDS - JOB_HEARTBEAT_SECONDS "
        f"({JOB_STALE_SECONDS - JOB_HEARTBEAT_SECONDS}): a partitioned worker could still run when its job is retried.")
# A queued job whose task could not be sent (the broker was down after its commit) is sent again by the
# reaper once it has waited this long.
JOB_DISPATCH_RETRY_SECONDS = env_int("JOB_DISPATCH_RETRY_SECONDS", 15, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "reap-jobs": {"task": "apps.core.tasks.jobs_reap_task", "schedule": JOB_REAP_INTERVAL_SECONDS},
    "reconcile-sweeps": {"task": "apps.sweeps.tasks.sweeps_reconcile_task", "schedule": 60},
}
# A cancel escalates from the cancel file to SIGTERM and then SIGKILL, each after this grace: long enough for
# a step plus the final checkpoint. The builtin model takes seconds; a Tunix (Gemma) step and its checkpoint
# can take minutes, so that backend has its own grace.
RUN_CANCEL_GRACE_SECONDS = env_int("RUN_CANCEL_GRACE_SECONDS", 5, minimum=1)
TUNIX_CANCEL_GRACE_SECONDS = env_int("TUNIX_CANCEL_GRACE_SECONDS", 120, minimum=1)
# Live followers (the run log stream) are woken by Redis pub/sub when one is configured, else poll.
NOTIFY_REDIS_URL = env_str("NOTIFY_REDIS_URL", CACHE_URL or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""))
NOTIFY_POLL_SECONDS = env_int("NOTIFY_POLL_SECONDS", 2, minimum=1)
# Builds that select more traces than this run as background jobs (202 + a status URL).
DATASET_BUILD_SYNC_MAX_TRACES = env_int("DATASET_BUILD_SYNC_MAX_TRACES", 20_000, minimum=0)

# RediAI-compatible generation service used by the llm_judge (SPEC §5); "mock" needs no server.
REDIAI_MODE = env_str("REDIAI_MODE", "mock")
REDIAI_BASE_URL = env_str("REDIAI_BASE_URL", "")
REDIAI_HEALTH_TTL_S = env_int("REDIAI_HEALTH_TTL_S", 30, minimum=0)
REDIAI_TIMEOUT_S = env_int("REDIAI_TIMEOUT_S", 30, minimum=1)
# Who grades llm_judge: mock | rediai (the REDIAI_* service above) | openai (any OpenAI-compatible server,
# `POST {LLM_JUDGE_BASE_URL}/chat/completions`). Unset follows REDIAI_MODE (real → rediai); that is resolved
# when a judge runs (apps.core.checks.llm_judge_mode), so a deployment configured before this setting keeps
# its judge. The system checks tunixrt.E005-E007 refuse an unknown mode or an incomplete openai one.
LLM_JUDGE_MODE = env_str("LLM_JUDGE_MODE", "").strip()
LLM_JUDGE_BASE_URL = env_str("LLM_JUDGE_BASE_URL", "")  # e.g. http://127.0.0.1:8000/v1
LLM_JUDGE_MODEL = env_str("LLM_JUDGE_MODEL", "")  # e.g. reasoner@champion; part of the judge_key
LLM_JUDGE_API_KEY = env_str("LLM_JUDGE_API_KEY", "")  # secret: sent only as the bearer token, never stored
LLM_JUDGE_TIMEOUT_S = env_int("LLM_JUDGE_TIMEOUT_S", 30, minimum=1)
LLM_JUDGE_RETRIES = env_int("LLM_JUDGE_RETRIES", 1, minimum=0)  # extra attempts after a timeout, 429 or 5xx
LLM_JUDGE_MAX_TOKENS = env_int("LLM_JUDGE_MAX_TOKENS", 256, minimum=1)
# When a run completes, an evaluation of its final checkpoint on this eval set is queued (runs opt out
# with auto_evaluate=false); empty turns it off. AUTO_EVAL_LIMIT > 0 evaluates only the first N items.
AUTO_EVAL_SET = env_str("AUTO_EVAL_SET", "eval-v1")
AUTO_EVAL_LIMIT = env_int("AUTO_EVAL_LIMIT", 0, minimum=0)
# Moving a model's `champion` alias needs the candidate's answer accuracy to be at most this much
# below the current champion's on the same eval set (absolute; 0 = no worse). The gate reads these
# three at check time, so a change takes effect on the next move.
CHAMPION_TOLERANCE = env_float("CHAMPION_TOLERANCE", 0.0, minimum=0.0)
# `point`: the point accuracies decide; `paired_ci`: the candidate passes only when the paired 95 %
# interval of the per-item difference stays within the tolerance on the worse side.
CHAMPION_DECISION = env_choice("CHAMPION_DECISION", "point", ("point", "paired_ci"))
# Gate (and model version) evidence covers the whole eval set; > 0 accepts an evaluation of at least
# this many items instead.
CHAMPION_MIN_ITEMS = env_int("CHAMPION_MIN_ITEMS", 0, minimum=0)
# Promoting an imported run loads its checkpoint in a fresh process first; it gives up after this long.
CHECKPOINT_CHECK_TIMEOUT_S = env_int("CHECKPOINT_CHECK_TIMEOUT_S", 600, minimum=10)

# Serving (`/v1/chat/completions`): each web process keeps one model host child (`python -m training serve`)
# holding at most this many MiB of parameters; a request waits at most SERVING_TIMEOUT_S for its answer.
SERVING_MEMORY_BUDGET_MB = env_int("SERVING_MEMORY_BUDGET_MB", 2048, minimum=1)
SERVING_TIMEOUT_S = env_int("SERVING_TIMEOUT_S", 120, minimum=1)
SERVING_MAX_N = env_int("SERVING_MAX_N", 8, minimum=1)
SERVING_DIR = Path(env_str("TUNIXRT_SERVING_DIR", str(DATA_DIR / "serving"))).resolve()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "celery.app.trace": {"level": "WARNING"},
        # Orbax logs every checkpoint read and write at INFO through absl.
        "absl": {"level": "WARNING"},
        "jax": {"level": "WARNING"},
    },
}
