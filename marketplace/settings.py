"""Commonplace settings: one module, every value from the environment.

The defaults give the embedded setup (SQLite under var/, a file-system Celery broker, files on
disk, billing on the local ledger). Production sets DATABASE_URL, CELERY_BROKER_URL, the storage
and Stripe variables, and DJANGO_SECRET_KEY, which is required unless DJANGO_DEBUG is on.
"""

import hashlib
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
VAR_DIR = Path(env.str("COMMONPLACE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database, broker and files live here

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required unless DJANGO_DEBUG is on.")
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "marketplace",
    "licensing",
]

MIDDLEWARE = [
    "marketplace.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost, so it sees the organization the API resolved (licensing/middleware.py).
    "licensing.middleware.ApiRequestMeteringMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# Database: SQLite in WAL mode under var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'commonplace.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Celery worker and web server write concurrently; wait instead of failing at once.
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Guardian: no anonymous user row; anonymous callers never hold object permissions.
ANONYMOUS_USER_NAME = None
GUARDIAN_USER_OBJ_PERMS_MODEL = "guardian.UserObjectPermission"
GUARDIAN_GROUP_OBJ_PERMS_MODEL = "guardian.GroupObjectPermission"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env.str("COMMONPLACE_MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {
        "BACKEND": env.str(
            "COMMONPLACE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Commonplace <noreply@localhost>")
PUBLIC_BASE_URL = env.str("COMMONPLACE_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# Production-safe defaults; DEBUG relaxes them for local HTTP.
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 3600)
X_FRAME_OPTIONS = "DENY"

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://commonplace")}

# Celery: a file-system broker needs no server. It does not redeliver a message whose worker
# died, so long jobs keep their own heartbeat instead of trusting the broker.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    # Longer than any extract part, so Redis does not hand a running part to a second worker.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600),
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    # The file-system transport does not create its folders.
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "queue"),
            "data_folder_out": str(_broker_dir / "queue"),
            "control_folder": str(_broker_dir / "control"),
        }
    )
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "expire-stale-license-requests": {
        "task": "licensing.expire_stale_requests",
        "schedule": 3600.0,
    },
    "expire-licenses": {"task": "licensing.expire_licenses", "schedule": 900.0},
    "process-compliance-ledger": {
        "task": "licensing.process_compliance_ledger",
        "schedule": env.float("COMPLIANCE_INTERVAL_SECONDS", default=60.0),
    },
    "reap-stalled-extract-parts": {
        "task": "licensing.reap_stalled_extract_parts",
        "schedule": env.float("EXTRACT_REAPER_INTERVAL_SECONDS", default=30.0),
    },
    "rollup-usage": {"task": "licensing.rollup_usage", "schedule": 900.0},
    # Overage to Stripe Billing Meters (does nothing without STRIPE_API_KEY).
    "report-stripe-usage": {"task": "licensing.report_stripe_usage", "schedule": 3600.0},
    # Local ledger only (a no-op with a Stripe key): last month's invoices, rebuilt until final.
    "build-local-invoices": {"task": "licensing.build_local_invoices", "schedule": 3600.0},
    "enforce-dunning": {"task": "licensing.enforce_dunning", "schedule": 3600.0},
    # Creator compensation (docs/COMPENSATION.md): split pools whose period ended, then pay out.
    "allocate-revenue-pools": {"task": "licensing.allocate_due_pools", "schedule": 3600.0},
    "run-payouts": {
        "task": "licensing.run_scheduled_payouts",
        "schedule": env.float("PAYOUT_INTERVAL_SECONDS", default=24 * 3600.0),
    },
}
# Results are kept only for tasks that ask (the extract chord joins its parts through them): on
# Redis in the same server as the broker, on disk next to the embedded broker.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
if not CELERY_RESULT_BACKEND:
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        CELERY_RESULT_BACKEND = CELERY_BROKER_URL
    elif CELERY_BROKER_URL.startswith("filesystem://"):
        (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
        CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"

# Extracts (licensing/services/extracts.py). A part is at most EXTRACT_PART_ROWS rows, read and
# written EXTRACT_CHUNK_ROWS at a time (the worker's memory is bounded by the chunk, not the
# extract). A running part beats every chunk; one silent for EXTRACT_HEARTBEAT_STALE_SECONDS is
# presumed dead and re-run by the reaper, at most EXTRACT_PART_MAX_ATTEMPTS times in all.
EXTRACT_PART_ROWS = env.int("EXTRACT_PART_ROWS", default=250_000)
EXTRACT_CHUNK_ROWS = env.int("EXTRACT_CHUNK_ROWS", default=20_000)
EXTRACT_HEARTBEAT_STALE_SECONDS = env.int("EXTRACT_HEARTBEAT_STALE_SECONDS", default=120)
EXTRACT_PART_MAX_ATTEMPTS = env.int("EXTRACT_PART_MAX_ATTEMPTS", default=4)
EXTRACT_PART_SOFT_TIME_LIMIT = env.int("EXTRACT_PART_SOFT_TIME_LIMIT", default=3600)
# Synthetic canary records planted in every extract (licensing/services/canaries.py).
EXTRACT_CANARIES = env.int("EXTRACT_CANARIES", default=4)
# Each extract file may be downloaded this many times (every download is metered).
EXTRACT_MAX_DOWNLOADS_PER_FILE = env.int("EXTRACT_MAX_DOWNLOADS_PER_FILE", default=10)
# Bytes a license may download in all, over its extracts and files, manifests included
# (licensing/services/quotas.py); a download that would pass it is refused whole.
LICENSE_DOWNLOAD_BYTES_CAP = env.int("LICENSE_DOWNLOAD_BYTES_CAP", default=50 * 1024**3)
# Download links (licensing/services/file_delivery.py) are valid for at most this long.
EXTRACT_URL_TTL_SECONDS = env.int("EXTRACT_URL_TTL_SECONDS", default=300)
# Extract files: on disk under var/extracts, or in an S3 bucket (EXTRACTS_STORAGE=s3). S3
# credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID/..., or the instance role).
EXTRACTS_STORAGE = env.str("EXTRACTS_STORAGE", default="filesystem")
if EXTRACTS_STORAGE == "s3":
    STORAGES["extracts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("EXTRACTS_S3_BUCKET"),  # required: no default bucket
            "location": env.str("EXTRACTS_S3_PREFIX", default=""),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",  # presigned URLs then carry X-Amz-Expires
            "querystring_auth": True,
            "querystring_expire": EXTRACT_URL_TTL_SECONDS,
            "file_overwrite": True,  # extract files have deterministic names; reruns replace
            "default_acl": None,  # private: the bucket's policy, never public-read
        },
    }
elif EXTRACTS_STORAGE == "filesystem":
    STORAGES["extracts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # No base_url: these files are served only through signed links, never MEDIA_URL.
        "OPTIONS": {"location": str(VAR_DIR / "extracts")},
    }
else:
    raise ImproperlyConfigured(
        f"EXTRACTS_STORAGE must be 'filesystem' or 's3', not {EXTRACTS_STORAGE!r}."
    )
# Deletion notices (licensing/services/compliance.py): batched per license and period, to be
# acknowledged within the deadline or the license's extracts and downloads stop.
COMPLIANCE_NOTICE_PERIOD_MINUTES = env.int("COMPLIANCE_NOTICE_PERIOD_MINUTES", default=60)
COMPLIANCE_NOTICE_DEADLINE_HOURS = env.int("COMPLIANCE_NOTICE_DEADLINE_HOURS", default=72)
# Vendors' notice webhooks must use https, except in local development.
COMPLIANCE_WEBHOOK_ALLOW_HTTP = env.bool("COMPLIANCE_WEBHOOK_ALLOW_HTTP", default=DEBUG)
# Signs extract manifests (HMAC-SHA256). Derived from SECRET_KEY unless set, so it is stable
# for as long as the deployment's secret is.
EXTRACT_MANIFEST_KEY = env.str(
    "COMMONPLACE_MANIFEST_KEY",
    default=hashlib.sha256(f"commonplace-manifest:{SECRET_KEY}".encode()).hexdigest(),
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API key first: its WWW-Authenticate header turns "not signed in" into a 401.
        "marketplace.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "marketplace.api.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "marketplace.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["marketplace.api.parsers.BoundedJSONParser"],
    "PAGE_SIZE": 50,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Throttles key on the client address: 0 trusts REMOTE_ADDR only (DRF's None would trust a
    # client-supplied X-Forwarded-For); behind N reverse proxies set TRUSTED_PROXY_COUNT=N.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Commonplace API",
    "DESCRIPTION": "Consent-first licensing of public social-media posts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "marketplace.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "MembershipRoleEnum": "marketplace.models.MembershipRole.choices",
        "OrganizationKindEnum": "marketplace.models.OrganizationKind.choices",
        "VettingStatusEnum": "marketplace.models.VettingStatus.choices",
        "VettingDecisionEnum": "marketplace.models.VettingDecisionKind.choices",
        "ReviewDecisionEnum": "licensing.models.DecisionKind.choices",
        "PurposeEnum": "marketplace.models.ConsentPurpose.choices",
        "CreatorConsentChoiceEnum": "marketplace.services.creators.SETTABLE_CHOICES",
        "CreatorConsentStateEnum": "marketplace.services.creators.CONSENT_STATES",
    },
}

# API keys: last_used_at is written at most this often, so a busy key does not write per request.
API_KEY_LAST_USED_RESOLUTION_SECONDS = env.int("API_KEY_LAST_USED_RESOLUTION_SECONDS", default=300)
# Failed API-key attempts per (key prefix, client address) and per address, in a fixed window
# counted in the default cache (Redis via CACHE_URL in production, so every process shares it).
API_KEY_FAILURES_PER_PREFIX = env.int("API_KEY_FAILURES_PER_PREFIX", default=10)
API_KEY_FAILURES_PER_ADDRESS = env.int("API_KEY_FAILURES_PER_ADDRESS", default=100)
API_KEY_FAILURE_WINDOW_SECONDS = env.int("API_KEY_FAILURE_WINDOW_SECONDS", default=300)
EMAIL_CONFIRMATION_MAX_AGE_SECONDS = 3 * 24 * 3600
INVITATION_MAX_AGE_SECONDS = 7 * 24 * 3600
# The platform signs creator sign-in links with this shared secret (docs/CREATOR_SIGN_IN.md).
# Unset outside DEBUG, creator sign-in links are refused rather than signed with a known value.
COMMONPLACE_CREATOR_LINK_SECRET = env.str("COMMONPLACE_CREATOR_LINK_SECRET", default="") or (
    "insecure-creator-link-secret-for-development" if DEBUG else ""
)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "marketplace.observability.RequestIdFilter"}},
    "formatters": {"json": {"()": "marketplace.observability.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
AUTH_USER_MODEL = "marketplace.User"

# Licensing: requests whose quote reaches this amount (minor units) need two different approvers;
# undecided requests expire; the terms a licensee accepts carry this version.
LICENSE_FOUR_EYES_THRESHOLD_MINOR = env.int("LICENSE_FOUR_EYES_THRESHOLD_MINOR", default=1_000_000)
LICENSE_REQUEST_EXPIRY_DAYS = env.int("LICENSE_REQUEST_EXPIRY_DAYS", default=30)
LICENSE_TERMS_VERSION = env.str("LICENSE_TERMS_VERSION", default="2026-11-01")

# Billing through Stripe (licensing/services/stripe_gateway.py) when STRIPE_API_KEY is set;
# without a key (the default) fees are settled on the local ledger at once.
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_CHECKOUT_SUCCESS_URL = env.str(
    "STRIPE_CHECKOUT_SUCCESS_URL", default=f"{PUBLIC_BASE_URL}/billing/checkout/success"
)
STRIPE_CHECKOUT_CANCEL_URL = env.str(
    "STRIPE_CHECKOUT_CANCEL_URL", default=f"{PUBLIC_BASE_URL}/billing/checkout/cancelled"
)
# Days a Stripe invoice may stay unpaid after a failed payment before its license is suspended.
BILLING_DUNNING_GRACE_DAYS = env.int("BILLING_DUNNING_GRACE_DAYS", default=7)
# Creator payouts (docs/COMPENSATION.md): balances below this many minor units carry over.
PAYOUT_MINIMUM_MINOR = env.int("PAYOUT_MINIMUM_MINOR", default=1000)
STRIPE_CONNECT_REFRESH_URL = env.str(
    "STRIPE_CONNECT_REFRESH_URL", default=f"{PUBLIC_BASE_URL}/creator/payouts/connect/refresh"
)
STRIPE_CONNECT_RETURN_URL = env.str(
    "STRIPE_CONNECT_RETURN_URL", default=f"{PUBLIC_BASE_URL}/creator/payouts/connect/done"
)

# Ingest routes (/api/v1/platform/...): larger bodies answer 413; split them into several requests.
COMMONPLACE_INGEST_MAX_BYTES = env.int("COMMONPLACE_INGEST_MAX_BYTES", default=20 * 1024 * 1024)
