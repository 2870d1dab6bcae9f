"""Settings shared by every environment, read from the environment (12-factor).

Unset variables fall back to the embedded defaults: SQLite, a local-memory cache, a
filesystem Celery broker, console email and localstripe on loopback.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# Published in the README for the embedded default; production refuses every one of them.
_DEVELOPMENT_SECRETS = {
    "SECRET_KEY": "insecure-local-development-key-change-me-in-production",
    "STRIPE_SECRET_KEY": "sk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe_development",
}

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=_DEVELOPMENT_SECRETS["SECRET_KEY"])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "config",
    "common",
    "accounts",
    "billing",
    "generation",
    "reporting",
    "webhooks",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # First, so the duration it records is the whole stack's.
    "common.middleware.RequestMetricsMiddleware",
    "common.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "common.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "common.middleware.ApiBodySizeLimitMiddleware",
    # Sessions, the signed-in user and messages serve pages; API calls skip them.
    "common.page_middleware.PageSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "common.page_middleware.PageAuthenticationMiddleware",
    "common.page_middleware.PageMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.CurrentOrganizationMiddleware",
    # Turns django-ratelimit's Ratelimited into RATELIMIT_VIEW's 429 page.
    "django_ratelimit.middleware.RatelimitMiddleware",
    "common.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "accounts.context_processors.current_organization",
            ],
        },
    },
]

# Database: PostgreSQL through psycopg 3 when DATABASE_URL is set, a SQLite file otherwise.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # The embedded worker writes while the web process reads: WAL and IMMEDIATE
    # transactions turn lock contention into short waits instead of errors.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASE_POOL_SIZE := env.int("DATABASE_POOL_SIZE", default=0):
    # A process that serves many requests or jobs at once from few connections (the
    # Procfile's gevent `web` and threaded `upstream` lines): each takes a connection from
    # the pool for a query or a transaction and gives it back before it waits on anything
    # else (Redis, an upstream server), so the connections it holds never exceed the pool.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {
            "min_size": min(2, DATABASE_POOL_SIZE),
            "max_size": DATABASE_POOL_SIZE,
            # A request that cannot get a connection this long is answered 503.
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10),
        },
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # No health check: it costs a `SELECT 1` round trip at the start of every request. A
    # connection the server dropped fails its request with a 503 (common/api/errors.py) and
    # Django then discards it, so one request per worker pays for a restart, not all of them.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache (rate limits, idempotency records, job wake-ups): Redis when REDIS_URL is set.
REDIS_URL = env("REDIS_URL", default="")
# Connections one process may open to Redis per client pool (redis-py's default is 100). A
# gevent web process serves up to WEB_WORKER_CONNECTIONS requests at once, and each waiting
# call holds one connection for its BLPOP; the `upstream` worker has a thread per slot.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=2000)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "common.fastpaths.redis_cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
                "max_connections": REDIS_MAX_CONNECTIONS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis as broker when REDIS_URL is set, kombu's filesystem transport otherwise.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcast (pidbox) files, otherwise written to a `control/` folder in the cwd.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "max_retries": 0}
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "common.fastpaths.kombu_redis:Transport"
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker process of the `gpu` queue loads its diffusion models and warms them up before
# it reports ready (generation.diffusers_models): minutes for a large model, where Celery
# would otherwise kill a child that is not up within 4 s.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("WORKER_START_TIMEOUT_SECONDS", default=900)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Celery otherwise closes the database connection before and after every task, so each
# task pays for a new PostgreSQL connection; config/celery.py retires stale ones instead.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ROUTES = {
    # Webhooks have their own queue so a slow receiver never delays generation.
    "webhooks.tasks.*": {"queue": "webhooks"},
}
# Stripe's event comes within seconds of a payment: a purchase still not credited this long
# after it began is asked about at Stripe (its event may be lost).
PACK_RECONCILE_AFTER_SECONDS = env.int("PACK_RECONCILE_AFTER_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = {
    "billing-expire-credits": {"task": "billing.tasks.expire_credits", "schedule": 3600},
    # Resends the auto-recharges whose task was lost (billing.services.recharging).
    "billing-send-unsent-recharges": {
        "task": "billing.tasks.send_unsent_recharges",
        "schedule": 60,
    },
    "billing-grant-monthly-credits": {
        "task": "billing.tasks.grant_monthly_credits",
        "schedule": 3600,
    },
    # Credits the pack purchases whose Stripe event was lost (billing.services.packs).
    "billing-reconcile-pack-purchases": {
        "task": "billing.tasks.reconcile_pack_purchases",
        "schedule": min(120, PACK_RECONCILE_AFTER_SECONDS),
    },
    "billing-reconcile-subscriptions": {
        "task": "billing.tasks.reconcile_subscriptions",
        "schedule": 6 * 3600,
    },
    "reporting-rollup-usage": {"task": "reporting.tasks.rollup_recent_usage", "schedule": 600.0},
    "reap-stuck-jobs": {"task": "generation.tasks.reap_stuck_jobs", "schedule": 60.0},
    # Re-issues the turns a broker restart lost, so waiting jobs start (docs: Scheduling).
    "reissue-lost-turns": {"task": "generation.tasks.reissue_lost_turns", "schedule": 30.0},
    "delete-expired-images": {"task": "generation.tasks.delete_expired_images", "schedule": 3600.0},
    # Sends the webhook deliveries whose enqueue was lost or whose retry wait was long.
    "webhooks-send-due-deliveries": {
        "task": "webhooks.tasks.send_due_deliveries",
        "schedule": 15.0,
    },
}

AUTH_USER_MODEL = "accounts.User"
# Organizations one person may own (each has its own rate-limit windows); staff raise it per
# person in the admin.
MAX_ORGANIZATIONS_PER_USER = env.int("MAX_ORGANIZATIONS_PER_USER", default=5)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files browsers ask for at the site's root (/favicon.ico), served by WhiteNoise as they are.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Images in a bucket (AWS S3 or any S3-compatible server), shared by every web host and
# worker. django-storages reads these settings; it reads the credentials
# (AWS_S3_ACCESS_KEY_ID / AWS_ACCESS_KEY_ID and AWS_S3_SECRET_ACCESS_KEY /
# AWS_SECRET_ACCESS_KEY) from the environment itself, and without them boto3 finds its own
# (an instance or task role), so no secret passes through settings.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
    AWS_S3_ADDRESSING_STYLE = env("AWS_S3_ADDRESSING_STYLE", default=None)
    # Objects are private: they are reached only through presigned URLs.
    AWS_DEFAULT_ACL = "private"
    AWS_QUERYSTRING_AUTH = True
    # Signature V4: every AWS region and S3-compatible server takes it, and its presigned
    # URLs carry their lifetime (botocore would otherwise presign with the legacy V2).
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Imagen <billing@imagen.local>")

# Who invoices are from: printed on every invoice page, email and PDF. SELLER_ADDRESS takes
# its lines separated by "|".
INVOICE_SELLER = {
    "name": env("SELLER_NAME", default="Imagen Platform Ltd."),
    "address": [
        line.strip()
        for line in env(
            "SELLER_ADDRESS", default="1 Example Street|London EC1A 1AA|United Kingdom"
        ).split("|")
        if line.strip()
    ],
    "email": env("SELLER_EMAIL", default="billing@imagen.local"),
    "tax_id": env("SELLER_TAX_ID", default=""),
}

# The whole request body of an API call, checked before it is read (docs/api: 413 over 15 MB).
API_MAX_BODY_BYTES = 15 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "common.api.parsers.JSONParser",
        "common.api.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "common.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Imagen API",
    "DESCRIPTION": "Generate images from text and images; credits, jobs and webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "/favicon.ico",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.api.schema.document_error_responses",
        "common.api.schema.apply_public_reference",
    ],
    # An optional field is optional: no BlankEnum / NullEnum components beside its choices.
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    # The same choices in several operations (generations, edits) and in their answers:
    # named once each, not after whichever component drf-spectacular met first.
    "ENUM_NAME_OVERRIDES": {
        "QualityEnum": "generation.quality.Quality.choices",
        "BackgroundEnum": "generation.output_formats.Background.choices",
        "RenderedQualityEnum": [("low", "low"), ("medium", "medium"), ("high", "high")],
        "RenderedBackgroundEnum": [("opaque", "opaque"), ("transparent", "transparent")],
    },
}

# Stripe: the real API in production, localstripe in the embedded default and in tests.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default=_DEVELOPMENT_SECRETS["STRIPE_SECRET_KEY"])
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="pk_test_localstripe")
STRIPE_WEBHOOK_SECRET = env(
    "STRIPE_WEBHOOK_SECRET", default=_DEVELOPMENT_SECRETS["STRIPE_WEBHOOK_SECRET"]
)
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_JS_URL = env("STRIPE_JS_URL", default="https://js.stripe.com/v3/")

# Generation.
JOB_WAIT_SECONDS = env.int("JOB_WAIT_SECONDS", default=30)
IMAGE_URL_TTL_SECONDS = env.int("IMAGE_URL_TTL_SECONDS", default=3600)
# With a bucket, an image URL redirects to a presigned URL of the object valid this long
# (never past the image URL's own expiry): short, as whoever holds it needs no signature.
IMAGE_PRESIGNED_URL_SECONDS = env.int("IMAGE_PRESIGNED_URL_SECONDS", default=300)
# run_job's limits; a job unfinished JOB_DEADLINE_SECONDS after submission is failed and
# refunded by the reaper; a job whose worker died is retried up to JOB_MAX_ATTEMPTS times.
JOB_SOFT_TIME_LIMIT_SECONDS = env.int("JOB_SOFT_TIME_LIMIT_SECONDS", default=120)
JOB_TIME_LIMIT_SECONDS = env.int("JOB_TIME_LIMIT_SECONDS", default=150)
JOB_DEADLINE_SECONDS = env.int("JOB_DEADLINE_SECONDS", default=600)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=2)
# How long a streamed request (OpenAI's stream=true) follows its job: past the deadline,
# plus the reaper's minute, so the stream always tells how the job ended.
JOB_STREAM_SECONDS = env.int("JOB_STREAM_SECONDS", default=JOB_DEADLINE_SECONDS + 90)
CELERY_TASK_ANNOTATIONS = {
    "generation.tasks.run_job": {
        "soft_time_limit": JOB_SOFT_TIME_LIMIT_SECONDS,
        "time_limit": JOB_TIME_LIMIT_SECONDS,
    },
}

# Webhooks: private addresses are refused unless this is set (development and tests only).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Total time for one delivery attempt: connect, send and read the answer.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Upstream engines (openai_compatible) are refused private addresses unless this is set
# (a self-hosted model server beside the workers); unset means WEBHOOK_ALLOW_PRIVATE_NETWORKS.
UPSTREAM_ALLOW_PRIVATE_NETWORKS = env.bool("UPSTREAM_ALLOW_PRIVATE_NETWORKS", default=None)

RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "accounts.views.rate_limited"
# Limits keyed on the client's address read it through common/client_address.py. Behind a load
# balancer, set how many proxies append to X-Forwarded-For; unset, the header is never trusted
# (a client could otherwise claim a fresh address with every request).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
RATELIMIT_IP_META_KEY = "common.client_address.client_ip"

# Logs: human-readable lines by default; LOG_FORMAT=json gives one JSON object per line.
# Either way each line carries the request id, organization and job id where known.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "common.log_context.LogContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s "
            "%(request_id)s %(organization)s %(job_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            # ISO 8601 in UTC, from the record's creation time.
            "timestamp": True,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR", "propagate": True},
        # The stripe library logs every API call at INFO.
        "stripe": {"level": "WARNING"},
    },
}

# /metrics (Prometheus): served only to a scraper presenting this bearer token; unset, the
# route answers 404. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself, from the
# environment) makes every web and worker process write to one shared directory.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The Celery queues whose depth a scrape reads from a Redis broker.
METRICS_QUEUES = env.list(
    "METRICS_QUEUES",
    default=["local", "upstream", "gpu", "celery", "webhooks", "webhooks_retry", "webhooks_slow"],
)

# Errors to Sentry, only when a DSN is given.
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    from config.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("SENTRY_RELEASE", default=None),
    )
