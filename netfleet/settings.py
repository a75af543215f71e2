"""netfleet settings: every value comes from the environment, with embedded defaults.

The embedded default needs no server: SQLite (WAL), local-memory cache, a filesystem Celery broker and an
in-memory channel layer. `DATABASE_URL`, `CACHE_URL`, `CELERY_BROKER_URL` and `CHANNEL_LAYER_URL` switch each part
to PostgreSQL / Redis. All local state lives under `NETFLEET_DATA_DIR`.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from netfleet.core.secrets import load_or_create_local_secrets

BASE_DIR = Path(__file__).resolve().parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("NETFLEET_DATA_DIR") or "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

ENVIRONMENT = os.environ.get("NETFLEET_ENVIRONMENT", "development")
if ENVIRONMENT not in ("development", "staging", "production"):
    raise ImproperlyConfigured("NETFLEET_ENVIRONMENT must be development, staging or production")
DEBUG = env_bool("DEBUG", False)

_local_secrets = load_or_create_local_secrets(DATA_DIR)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secrets["secret_key"]
# Fernet keys for secrets at rest; the first encrypts, all decrypt (rotation: prepend a new key).
NETFLEET_SECRET_KEYS = env_list("NETFLEET_SECRET_KEYS") or _local_secrets["secret_keys"]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "netfleet.core.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "netfleet.core",
    "netfleet.accounts",
    "netfleet.controller",
    "netfleet.geo",
    "netfleet.connections",
    "netfleet.pki",
    "netfleet.vpn",
    "netfleet.gateways",
    "netfleet.hotspot",
    "netfleet.monitoring",
    "netfleet.firmware",
]

MIDDLEWARE = [
    "netfleet.core.middleware.RequestIdMiddleware",
    "netfleet.core.middleware.PathNormalizerMiddleware",
    # before the fast path: device-key ingest is limited per device (the agent's /controller/ paths are not limited)
    "netfleet.accounts.ratelimit.RateLimitMiddleware",
    "netfleet.core.middleware.FastPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "netfleet.core.middleware.BodyLimitMiddleware",
    "netfleet.accounts.csrf.CredentialsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "netfleet.urls"
WSGI_APPLICATION = "netfleet.wsgi.application"
ASGI_APPLICATION = "netfleet.asgi.application"
APPEND_SLASH = False  # the path normaliser makes trailing slashes optional without redirects

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

# Database: SQLite in WAL mode by default; DATABASE_URL (postgres://...) at scale.
_database_url = os.environ.get("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend; concurrent write transactions queue on a file lock (netfleet.core.db.sqlite)
            "ENGINE": "netfleet.core.db.sqlite",
            "NAME": DATA_DIR / "netfleet.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait (busy timeout)
                # instead of failing with "database is locked" when a read transaction upgrades.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                # WAL is a property of the database file, switched on once (netfleet.core.apps); setting it on
                # every connection takes a lock that makes concurrent workers wait on each other
                # 16 MB page cache per connection (SQLite's default is 2 MB): chart queries read a week of a
                # device's points through the index and the table
                "init_command": "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;",
            },
            # keep each worker thread's connection: opening SQLite per request costs more than the query
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 600),
            "TEST": {"NAME": os.environ.get("NETFLEET_TEST_SQLITE_NAME")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache (also the shared store of rate limits): local memory by default; CACHE_URL=redis://... at scale.
_cache_url = os.environ.get("CACHE_URL")
_cache_prefix = "netfleet"
_test_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _cache_url and _test_worker.startswith("gw"):
    # each pytest-xdist worker gets its own Redis database, so tests can flush it without disturbing another
    _cache_url = _cache_url.rsplit("/", 1)[0] + f"/{8 + int(_test_worker[2:])}"
if _cache_url:
    if not _cache_url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("CACHE_URL must be a redis:// URL")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
            "KEY_PREFIX": _cache_prefix,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "KEY_PREFIX": _cache_prefix,
            # Django's default (300 entries) would evict the agent answers of any real fleet on every poll
            "OPTIONS": {"MAX_ENTRIES": env_int("NETFLEET_LOCAL_CACHE_ENTRIES", 200_000)},
        }
    }
# A process-local cache cannot be invalidated by another process, so what other processes may change (the
# agent's checksum) is kept only briefly there; with a shared cache (Redis) it stays until invalidated.
NETFLEET_SHARED_CACHE = bool(_cache_url)

# Celery: a filesystem broker works across processes on one host without a server; Redis at scale.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),  # remote-control exchanges: not in the working directory
        "store_processed": False,
        # seconds between looks at the queue when it is empty (kombu's default, 1 s, caps each worker at a
        # couple of messages a second when tasks arrive one by one)
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Tasks record their outcome on the object they serve, so no result backend is needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("NETFLEET_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("NETFLEET_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {}

# Channels: in-memory layer for one process; CHANNEL_LAYER_URL=redis://... to fan out across hosts.
_channel_layer_url = os.environ.get("CHANNEL_LAYER_URL")
if _channel_layer_url:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [_channel_layer_url]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve app static files (admin, Swagger UI, ReDoc) straight from the installed packages: no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = DATA_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("NETFLEET_SECURE_COOKIES", ENVIRONMENT == "production")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Request bodies: 1 MiB for API requests unless a view declares its own limit (uploads).
NETFLEET_MAX_BODY_SIZE = env_int("NETFLEET_MAX_BODY_SIZE", 1024 * 1024)
# BodyLimitMiddleware enforces the limit per view from Content-Length, before the body is read; Django's own
# global cap would refuse the larger bodies that upload endpoints declare.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Docs (OpenAPI, Swagger UI, ReDoc): never in production; elsewhere on unless ENABLE_DOCS=false.
ENABLE_DOCS = env_bool("ENABLE_DOCS", True) and ENVIRONMENT != "production"

# Device-facing protocol paths that skip the browser/API middleware (see core.middleware.FastPathMiddleware).
NETFLEET_FAST_PATH_PREFIXES = ("/controller/", "/api/v1/monitoring/device/")

NETFLEET_PAGE_SIZE = env_int("NETFLEET_PAGE_SIZE", 50)
NETFLEET_MAX_PAGE_SIZE = env_int("NETFLEET_MAX_PAGE_SIZE", 1000)
NETFLEET_ACCESS_RESOLVER = "netfleet.accounts.access.resolve_access"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "netfleet.accounts.authentication.BearerAuthentication",
        "netfleet.accounts.authentication.ApiKeyAuthentication",
        "netfleet.accounts.authentication.CookieAuthentication",
        "netfleet.accounts.authentication.AdminSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "netfleet.core.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["netfleet.core.filters.NetfleetFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "netfleet.core.api.pagination.ResultsPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "netfleet.core.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "netfleet API",
    "DESCRIPTION": "Inventory, configuration, PKI/VPN, commands, monitoring and firmware for network fleets.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # several models have a `backend` field with different choices: name each enum after its meaning
    "ENUM_NAME_OVERRIDES": {
        "ConfigBackendEnum": "netfleet.controller.choices.ConfigBackend",
        "VpnBackendEnum": "netfleet.vpn.choices.VpnBackend",
    },
}

# Identity: refresh sessions, lockout, MFA challenge lifetime, API key cap, browser cookies.
NETFLEET_REFRESH_TOKEN_SECONDS = env_int("NETFLEET_REFRESH_TOKEN_SECONDS", 14 * 24 * 3600)
NETFLEET_LOGIN_MAX_FAILURES = env_int("NETFLEET_LOGIN_MAX_FAILURES", 5)
NETFLEET_LOGIN_LOCKOUT_SECONDS = env_int("NETFLEET_LOGIN_LOCKOUT_SECONDS", 30 * 60)
NETFLEET_MFA_CHALLENGE_SECONDS = env_int("NETFLEET_MFA_CHALLENGE_SECONDS", 300)
NETFLEET_API_KEYS_PER_USER = env_int("NETFLEET_API_KEYS_PER_USER", 10)
NETFLEET_ACCESS_COOKIE = "netfleet_access"
NETFLEET_REFRESH_COOKIE = "netfleet_refresh"
NETFLEET_CSRF_COOKIE = "netfleet_csrf"
# Public flows that cannot carry a pre-login cookie (platform-api.txt): no CSRF check.
NETFLEET_CSRF_EXEMPT_PATHS = (
    "/api/v1/auth/login/",
    "/api/v1/auth/register/",
    "/api/v1/auth/token/",
    "/api/v1/auth/refresh/",
    "/api/v1/auth/login/mfa/",
    "/api/v1/auth/password/reset-request/",
    "/api/v1/auth/password/reset/",
)
NETFLEET_CSRF_EXEMPT_PREFIXES = ("/api/v1/auth/oidc/", "/api/v1/auth/saml/", "/api/v1/auth/ldap/")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("NETFLEET_ACCESS_TOKEN_SECONDS", 30 * 60)),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_TYPE_CLAIM": "typ",
    "JTI_CLAIM": "jti",
    "UPDATE_LAST_LOGIN": False,
}

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "netfleet.core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own request logger would repeat each 4xx/5xx; netfleet.request logs every request once.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

# Controller: how many configs a change re-renders in the request before moving the rest to background chunks,
# and how long the agent's answers (checksum, archive) stay cached.
NETFLEET_CONTROLLER_INLINE_REFRESH = env_int("NETFLEET_CONTROLLER_INLINE_REFRESH", 50)
NETFLEET_CONTROLLER_REFRESH_CHUNK = env_int("NETFLEET_CONTROLLER_REFRESH_CHUNK", 500)
NETFLEET_CONTROLLER_AGENT_CACHE_SECONDS = env_int(
    "NETFLEET_CONTROLLER_AGENT_CACHE_SECONDS", 24 * 3600 if NETFLEET_SHARED_CACHE else 15
)

NETFLEET_ADMIN_EMAIL = os.environ.get("NETFLEET_ADMIN_EMAIL", "admin@example.com")

# Rate limits (netfleet/accounts/ratelimit.py): a sliding window per caller, kept in the cache so every worker and
# host shares it. A rate is "<requests>/<seconds>" ("5/60"), optionally with a unit ("600/1m", "120/s", "5/minute");
# "off" drops that one limit, NETFLEET_RATELIMIT_ENABLED=false all of them.
_RATE_UNITS = {"": 1, "s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def env_rate(name, default):
    text = (os.environ.get(name) or default).strip().lower()
    if text in ("off", "none"):
        return None
    requests, slash, period = text.partition("/")
    number = period.strip().rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = period.strip()[len(number) :].strip()
    if unit not in _RATE_UNITS and unit.endswith("s"):
        unit = unit[:-1]  # "seconds", "mins"
    try:
        rate = (int(requests), int(number.strip() or 1) * _RATE_UNITS[unit]) if slash else None
    except (ValueError, KeyError):
        rate = None
    if rate is None or rate[0] < 1 or rate[1] < 1:
        raise ImproperlyConfigured(f'{name} must be "<requests>/<seconds>" such as "5/60", or "off"; got {text!r}')
    return rate


NETFLEET_RATELIMIT_ENABLED = env_bool("NETFLEET_RATELIMIT_ENABLED", True)
NETFLEET_RATELIMIT_API = env_rate("NETFLEET_RATELIMIT_API", "600/60")  # (requests, seconds) or None
NETFLEET_RATELIMIT_BURST = env_rate("NETFLEET_RATELIMIT_BURST", "120/1")
NETFLEET_RATELIMIT_AUTH = env_rate("NETFLEET_RATELIMIT_AUTH", "5/60")  # /api/v1/auth/*, /users/*login/
NETFLEET_RATELIMIT_CACHE = os.environ.get("NETFLEET_RATELIMIT_CACHE") or "default"

# --- PKI and VPN (netfleet/pki, netfleet/vpn) ---------------------------------------------------------------
# Default validity of generated CAs and certificates, and how long a downloaded CRL is declared valid.
NETFLEET_PKI_CA_VALIDITY_DAYS = env_int("NETFLEET_PKI_CA_VALIDITY_DAYS", 3650)
NETFLEET_PKI_CERT_VALIDITY_DAYS = env_int("NETFLEET_PKI_CERT_VALIDITY_DAYS", 825)
NETFLEET_PKI_CRL_VALIDITY_HOURS = env_int("NETFLEET_PKI_CRL_VALIDITY_HOURS", 24)
# Key of CAs and certificates created automatically for VPN servers and clients: "rsa" (2048/4096) or "ec" (256/384).
NETFLEET_VPN_KEY_TYPE = os.environ.get("NETFLEET_VPN_KEY_TYPE", "ec")
NETFLEET_VPN_KEY_LENGTH = env_int("NETFLEET_VPN_KEY_LENGTH", 256)
if (NETFLEET_VPN_KEY_TYPE, NETFLEET_VPN_KEY_LENGTH) not in {("rsa", 2048), ("rsa", 4096), ("ec", 256), ("ec", 384)}:
    raise ImproperlyConfigured("NETFLEET_VPN_KEY_TYPE/_LENGTH must be rsa with 2048 or 4096, or ec with 256 or 384")
# Diffie-Hellman parameters of OpenVPN servers, generated in the background (slow at 2048 bits and more).
NETFLEET_VPN_DH_KEY_SIZE = env_int("NETFLEET_VPN_DH_KEY_SIZE", 2048)
if NETFLEET_VPN_DH_KEY_SIZE < 512:
    raise ImproperlyConfigured("NETFLEET_VPN_DH_KEY_SIZE must be at least 512")

# --- Connections and commands (netfleet/connections/) --------------------------------------------------------
# SSH timeouts (credentials' params may override them), the output kept per command, how many devices one task
# talks to at once (a batch of waiting commands, a push or re-test chunk), retries of unreachable devices, the
# sweep's grace period, configuration pushes (the debounce: a checksum must stay unchanged that long; the periodic
# backstop scan; chunk size; what each update strategy runs) and how long a failed connection waits before it is
# tested again.
NETFLEET_CONNECTIONS_CONNECT_TIMEOUT = env_int("NETFLEET_CONNECTIONS_CONNECT_TIMEOUT", 10)
NETFLEET_CONNECTIONS_EXEC_TIMEOUT = env_int("NETFLEET_CONNECTIONS_EXEC_TIMEOUT", 120)
NETFLEET_CONNECTIONS_OUTPUT_LIMIT = env_int("NETFLEET_CONNECTIONS_OUTPUT_LIMIT", 64 * 1024)
NETFLEET_CONNECTIONS_OUTPUT_FLUSH_SECONDS = env_int("NETFLEET_CONNECTIONS_OUTPUT_FLUSH_SECONDS", 1)
NETFLEET_CONNECTIONS_SSH_CONCURRENCY = env_int("NETFLEET_CONNECTIONS_SSH_CONCURRENCY", 100)
NETFLEET_CONNECTIONS_COMMAND_RETRIES = env_int("NETFLEET_CONNECTIONS_COMMAND_RETRIES", 2)
NETFLEET_CONNECTIONS_RETRY_BACKOFF = env_int("NETFLEET_CONNECTIONS_RETRY_BACKOFF", 5)
NETFLEET_CONNECTIONS_STALE_GRACE = env_int("NETFLEET_CONNECTIONS_STALE_GRACE", 300)
NETFLEET_CONNECTIONS_PUSH_DEBOUNCE = env_int("NETFLEET_CONNECTIONS_PUSH_DEBOUNCE", 5)
NETFLEET_CONNECTIONS_PUSH_INTERVAL = env_int("NETFLEET_CONNECTIONS_PUSH_INTERVAL", 5)
NETFLEET_CONNECTIONS_PUSH_CHUNK = env_int("NETFLEET_CONNECTIONS_PUSH_CHUNK", 200)
NETFLEET_CONNECTIONS_OPENWRT_PID_FILE = os.environ.get(
    "NETFLEET_CONNECTIONS_OPENWRT_PID_FILE", "/var/run/openwisp_config.pid"
)
NETFLEET_CONNECTIONS_OPENWRT_RESTART_COMMAND = os.environ.get(
    "NETFLEET_CONNECTIONS_OPENWRT_RESTART_COMMAND", "/etc/init.d/openwisp_config restart"
)
NETFLEET_CONNECTIONS_LINUX_CONFIG_DIR = os.environ.get("NETFLEET_CONNECTIONS_LINUX_CONFIG_DIR", "netfleet-config")
NETFLEET_CONNECTIONS_LINUX_APPLY_COMMAND = os.environ.get("NETFLEET_CONNECTIONS_LINUX_APPLY_COMMAND", "")
NETFLEET_CONNECTIONS_RETEST_INTERVAL = env_int("NETFLEET_CONNECTIONS_RETEST_INTERVAL", 300)
# asyncssh logs every connection and channel at INFO: noise (and a cost) at fleet scale
LOGGING["loggers"]["asyncssh"] = {"level": os.environ.get("NETFLEET_CONNECTIONS_SSH_LOG_LEVEL") or "WARNING"}
for _name in (
    "NETFLEET_CONNECTIONS_CONNECT_TIMEOUT",
    "NETFLEET_CONNECTIONS_EXEC_TIMEOUT",
    "NETFLEET_CONNECTIONS_OUTPUT_LIMIT",
    "NETFLEET_CONNECTIONS_SSH_CONCURRENCY",
    "NETFLEET_CONNECTIONS_PUSH_INTERVAL",
    "NETFLEET_CONNECTIONS_PUSH_CHUNK",
    "NETFLEET_CONNECTIONS_RETEST_INTERVAL",
):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive")
for _name in (
    "NETFLEET_CONNECTIONS_OUTPUT_FLUSH_SECONDS",
    "NETFLEET_CONNECTIONS_COMMAND_RETRIES",
    "NETFLEET_CONNECTIONS_RETRY_BACKOFF",
    "NETFLEET_CONNECTIONS_STALE_GRACE",
    "NETFLEET_CONNECTIONS_PUSH_DEBOUNCE",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must not be negative")
CELERY_BEAT_SCHEDULE["connections-schedule-config-pushes"] = {
    "task": "netfleet.connections.tasks.schedule_config_pushes",
    "schedule": float(NETFLEET_CONNECTIONS_PUSH_INTERVAL),
}
CELERY_BEAT_SCHEDULE["connections-fail-stale-commands"] = {
    "task": "netfleet.connections.tasks.fail_stale_commands",
    "schedule": 60.0,
}
# every minute at most, so a connection is tested again about RETEST_INTERVAL after it failed
CELERY_BEAT_SCHEDULE["connections-retest-connections"] = {
    "task": "netfleet.connections.tasks.retest_connections",
    "schedule": float(min(NETFLEET_CONNECTIONS_RETEST_INTERVAL, 60)),
}

# --- Gateways and hotspot (netfleet/gateways, netfleet/hotspot) ---------------------------------------------------
# Vendor API calls: connect timeout, read timeout (RouterOS ends a console command at 60 s, so a little more), and
# how many gateways keep an open client (keep-alive connections) per process.
NETFLEET_GATEWAYS_CONNECT_TIMEOUT = float(os.environ.get("NETFLEET_GATEWAYS_CONNECT_TIMEOUT") or 5)
NETFLEET_GATEWAYS_READ_TIMEOUT = float(os.environ.get("NETFLEET_GATEWAYS_READ_TIMEOUT") or 65)
NETFLEET_GATEWAYS_MAX_CLIENTS = env_int("NETFLEET_GATEWAYS_MAX_CLIENTS", 256)
# Hotspot packages: the currency of organizations without hotspot settings, and vouchers per request.
NETFLEET_HOTSPOT_DEFAULT_CURRENCY = os.environ.get("NETFLEET_HOTSPOT_DEFAULT_CURRENCY") or "KES"
NETFLEET_HOTSPOT_MAX_VOUCHERS = env_int("NETFLEET_HOTSPOT_MAX_VOUCHERS", 500)

# Monitoring (netfleet/monitoring/): the time series store and its retention, active checks, alert delivery.
NETFLEET_MONITORING_TIMESERIES_BACKEND = os.environ.get(
    "NETFLEET_MONITORING_TIMESERIES_BACKEND", "netfleet.monitoring.timeseries.SQLBackend"
)
NETFLEET_MONITORING_RAW_RETENTION_DAYS = env_int("NETFLEET_MONITORING_RAW_RETENTION_DAYS", 7)
NETFLEET_MONITORING_ROLLUP_RETENTION_DAYS = env_int("NETFLEET_MONITORING_ROLLUP_RETENTION_DAYS", 365)
NETFLEET_MONITORING_CHECK_INTERVAL = env_int("NETFLEET_MONITORING_CHECK_INTERVAL", 300)  # seconds
NETFLEET_MONITORING_CHECK_CHUNK = env_int("NETFLEET_MONITORING_CHECK_CHUNK", 200)  # devices per check task
NETFLEET_MONITORING_PING_COUNT = env_int("NETFLEET_MONITORING_PING_COUNT", 3)
NETFLEET_MONITORING_PING_TIMEOUT = env_int("NETFLEET_MONITORING_PING_TIMEOUT", 2)  # seconds per echo
# data_collected is healthy while the device sent data within this many seconds
NETFLEET_MONITORING_DATA_COLLECTED_WINDOW = env_int("NETFLEET_MONITORING_DATA_COLLECTED_WINDOW", 600)
NETFLEET_MONITORING_WEBHOOK_TIMEOUT = env_int("NETFLEET_MONITORING_WEBHOOK_TIMEOUT", 10)
NETFLEET_MONITORING_WEBHOOK_RETRIES = env_int("NETFLEET_MONITORING_WEBHOOK_RETRIES", 5)
# Alert webhooks (URLs an organization's admin sets) never connect to these networks (netfleet.core.outbound): the
# controller's own host, link-local (cloud metadata services), unspecified and multicast. Private ranges are allowed
# (on-premises chat and ticketing servers); add them here to block them too, or set "" to allow everything.
NETFLEET_OUTBOUND_BLOCKED_NETWORKS = env_list(
    "NETFLEET_OUTBOUND_BLOCKED_NETWORKS",
    ["127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8"],
)
NETFLEET_MONITORING_ALERT_EMAIL_FROM = os.environ.get("NETFLEET_MONITORING_ALERT_EMAIL_FROM", "netfleet@localhost")
# Hourly rollups: every ROLLUP_INTERVAL seconds, the hours that closed at least ROLLUP_GRACE seconds ago (time for
# the ingest transactions writing their last points to commit) are rolled up; charts of whole-hour buckets read them.
NETFLEET_MONITORING_ROLLUP_INTERVAL = env_int("NETFLEET_MONITORING_ROLLUP_INTERVAL", 300)
NETFLEET_MONITORING_ROLLUP_GRACE = env_int("NETFLEET_MONITORING_ROLLUP_GRACE", 120)
# ingest hands documents to the spool writer (`netfleet serve` sets it for the HTTP workers it runs the writer for)
NETFLEET_MONITORING_SPOOL = env_bool("NETFLEET_MONITORING_SPOOL", False)
if NETFLEET_MONITORING_ROLLUP_INTERVAL <= 0:
    raise ImproperlyConfigured("NETFLEET_MONITORING_ROLLUP_INTERVAL must be positive")
if NETFLEET_MONITORING_ROLLUP_GRACE < 0:
    raise ImproperlyConfigured("NETFLEET_MONITORING_ROLLUP_GRACE must not be negative")
CELERY_BEAT_SCHEDULE["monitoring-run-checks"] = {
    "task": "netfleet.monitoring.tasks.run_checks",
    "schedule": NETFLEET_MONITORING_CHECK_INTERVAL,
}
CELERY_BEAT_SCHEDULE["monitoring-roll-up-points"] = {
    "task": "netfleet.monitoring.tasks.roll_up_points",
    "schedule": NETFLEET_MONITORING_ROLLUP_INTERVAL,
}
CELERY_BEAT_SCHEDULE["monitoring-apply-retention"] = {
    "task": "netfleet.monitoring.tasks.apply_retention",
    "schedule": 3600,
}

# Geo (netfleet/geo): floor plan images (PNG, JPEG, GIF, WEBP) are limited in bytes and pixels; the upload views
# accept a request body that large plus room for the other form fields. The GeoJSON map endpoint returns this
# many locations per page unless `page_size` asks otherwise.
NETFLEET_GEO_MAX_IMAGE_BYTES = env_int("NETFLEET_GEO_MAX_IMAGE_BYTES", 10 * 1024 * 1024)
NETFLEET_GEO_MAX_IMAGE_PIXELS = env_int("NETFLEET_GEO_MAX_IMAGE_PIXELS", 64_000_000)
NETFLEET_GEO_GEOJSON_PAGE_SIZE = env_int("NETFLEET_GEO_GEOJSON_PAGE_SIZE", 1000)
for _name in ("NETFLEET_GEO_MAX_IMAGE_BYTES", "NETFLEET_GEO_MAX_IMAGE_PIXELS", "NETFLEET_GEO_GEOJSON_PAGE_SIZE"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be a positive integer")

# --- Firmware upgrades (netfleet/firmware) --------------------------------------------------------------------
# Upgrades run on their own Celery queue so slow flashing never starves fast work (`netfleet serve --queues`
# consumes "default,firmware"). A request records the operations; chunk tasks of NETFLEET_FIRMWARE_CHUNK devices
# upgrade at most NETFLEET_FIRMWARE_CONCURRENCY devices at once. One upgrade gets NETFLEET_FIRMWARE_OPERATION_TIMEOUT
# seconds (the sweep fails it after that plus the grace period); a maintenance window silences its alerts meanwhile.
# After flashing, the device must come back within NETFLEET_FIRMWARE_REBOOT_TIMEOUT seconds (polled every
# NETFLEET_FIRMWARE_REBOOT_POLL; a device never seen going away is checked after NETFLEET_FIRMWARE_REBOOT_DELAY).
# OpenWrt: where the image is uploaded, the extra free space required there (bytes), the sysupgrade command (tests
# point it at a stand-in script), whether `sysupgrade --test` checks the image first, and how the running version is
# read (compared with the build's OS identifier, or its version number).
NETFLEET_FIRMWARE_QUEUE = os.environ.get("NETFLEET_FIRMWARE_QUEUE") or "firmware"
NETFLEET_FIRMWARE_MAX_IMAGE_BYTES = env_int("NETFLEET_FIRMWARE_MAX_IMAGE_BYTES", 128 * 1024 * 1024)
NETFLEET_FIRMWARE_CONCURRENCY = env_int("NETFLEET_FIRMWARE_CONCURRENCY", 10)
NETFLEET_FIRMWARE_CHUNK = env_int("NETFLEET_FIRMWARE_CHUNK", 50)
NETFLEET_FIRMWARE_OPERATION_TIMEOUT = env_int("NETFLEET_FIRMWARE_OPERATION_TIMEOUT", 1800)
NETFLEET_FIRMWARE_STALE_GRACE = env_int("NETFLEET_FIRMWARE_STALE_GRACE", 300)
NETFLEET_FIRMWARE_MAINTENANCE_MINUTES = env_int("NETFLEET_FIRMWARE_MAINTENANCE_MINUTES", 30)
NETFLEET_FIRMWARE_REBOOT_DELAY = float(os.environ.get("NETFLEET_FIRMWARE_REBOOT_DELAY") or 60)
NETFLEET_FIRMWARE_REBOOT_TIMEOUT = float(os.environ.get("NETFLEET_FIRMWARE_REBOOT_TIMEOUT") or 600)
NETFLEET_FIRMWARE_REBOOT_POLL = float(os.environ.get("NETFLEET_FIRMWARE_REBOOT_POLL") or 5)
NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR = os.environ.get("NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR") or "/tmp"  # noqa: S108
NETFLEET_FIRMWARE_OPENWRT_MIN_FREE_SPACE = env_int("NETFLEET_FIRMWARE_OPENWRT_MIN_FREE_SPACE", 1024 * 1024)
NETFLEET_FIRMWARE_OPENWRT_UPGRADE_COMMAND = os.environ.get("NETFLEET_FIRMWARE_OPENWRT_UPGRADE_COMMAND") or "sysupgrade"
NETFLEET_FIRMWARE_OPENWRT_UPGRADE_TIMEOUT = env_int("NETFLEET_FIRMWARE_OPENWRT_UPGRADE_TIMEOUT", 120)
NETFLEET_FIRMWARE_OPENWRT_TEST_IMAGE = env_bool("NETFLEET_FIRMWARE_OPENWRT_TEST_IMAGE", True)
NETFLEET_FIRMWARE_OPENWRT_VERSION_COMMAND = os.environ.get("NETFLEET_FIRMWARE_OPENWRT_VERSION_COMMAND") or (
    '. /etc/openwrt_release && echo "$DISTRIB_DESCRIPTION"'
)
# image types beyond the built-in registry: JSON {"<type>": {"label": "...", "boards": ["<device model>", ...]}}
from json import loads as _json_loads  # noqa: E402 - kept inside this block, which is appended to the file

try:
    NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES = _json_loads(os.environ.get("NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES") or "{}")
except ValueError:
    raise ImproperlyConfigured("NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES must be a JSON object") from None
for _name in (
    "NETFLEET_FIRMWARE_MAX_IMAGE_BYTES",
    "NETFLEET_FIRMWARE_CONCURRENCY",
    "NETFLEET_FIRMWARE_CHUNK",
    "NETFLEET_FIRMWARE_OPERATION_TIMEOUT",
    "NETFLEET_FIRMWARE_REBOOT_TIMEOUT",
    "NETFLEET_FIRMWARE_REBOOT_POLL",
):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive")
if not isinstance(NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES, dict):
    raise ImproperlyConfigured("NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES must be a JSON object")
CELERY_TASK_ROUTES = {
    **globals().get("CELERY_TASK_ROUTES", {}),
    "netfleet.firmware.tasks.run_upgrades": {"queue": NETFLEET_FIRMWARE_QUEUE},
}
CELERY_BEAT_SCHEDULE["firmware-fail-stale-upgrades"] = {
    "task": "netfleet.firmware.tasks.fail_stale_upgrades",
    "schedule": 60.0,
}
