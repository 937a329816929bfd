"""Settings come from environment variables, with safe defaults for a local checkout.

Nothing here needs editing to run locally: the database defaults to an SQLite file in var/ and a
secret key is generated once into var/secret_key.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PATRONAGE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    # Its static files: the Swagger UIs (/docs, /api/v1/docs) load their scripts from this server, not a CDN.
    "ninja",
    "patronage.core",
    "patronage.workspace",
    "patronage.customers",
    "patronage.customer_sessions",
    "patronage.integration",
    "patronage.dataio",
    "patronage.offers",
    "patronage.promocodes",
    "patronage.segments",
    "patronage.mailings",
    "patronage.campaigns",
    "patronage.coupons",
    "patronage.panel",
    "patronage.home",  # the back office's home page (its dashboard)
    "patronage.ops",
]

MIDDLEWARE = [
    "patronage.integration.middleware.ApiEdgeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "patronage.urls"
WSGI_APPLICATION = "patronage.wsgi.application"

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

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'patronage.sqlite3'}"
# No per-request health check: it costs a round trip on every API call; a dropped connection fails one
# request and is replaced on the next.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of failing on upgrade;
    # WAL lets readers (the back office) run while the worker or the API writes.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) shared by live-server and race threads; per process: parallel runs never clash.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# In the database so that whatever uses Django's cache sees the same entries in every server process
# (`patronage run`/`serve` create the table; the test runner does too). The login throttles do not use it:
# they count in a table of their own with an atomic upsert (core.throttle).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "patronage_cache"}
}
if IS_POSTGRES and os.environ.get("PATRONAGE_TEST_DB_NAME"):
    # Lets two test runs share one PostgreSQL server without dropping each other's test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["PATRONAGE_TEST_DB_NAME"]}
# Behind PgBouncer in transaction mode each transaction may run on another server connection: nothing may
# outlive a transaction on the connection (prepared statements, cursors WITH HOLD, startup options).
PATRONAGE_PGBOUNCER = IS_POSTGRES and env_bool("PATRONAGE_PGBOUNCER", False)
if PATRONAGE_PGBOUNCER:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if IS_POSTGRES and not PATRONAGE_PGBOUNCER and env_bool("PATRONAGE_PG_PREPARE", True):
    # Server-side binding lets psycopg prepare statements it sees twice: PostgreSQL stops re-planning the
    # hot path's few statements (session PUT: 1.6 -> 1.0 ms of database CPU, docs/BENCHMARKS.md).
    # Turn off behind a pooler that cannot keep prepared statements (PgBouncer transaction mode < 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=2)
if IS_POSTGRES and not PATRONAGE_PGBOUNCER and not env_bool("PATRONAGE_PG_JIT", False):
    # PostgreSQL's JIT kicks in on cost estimates, not on real work: "My offers" (2.5 ms of execution) spent
    # 20 ms compiling. Short OLTP queries never win from it (docs/BENCHMARKS.md). Behind PgBouncer, which
    # refuses startup options, set it on the database instead: ALTER DATABASE ... SET jit = off.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STATIC_ROOT.mkdir(exist_ok=True)
# Static files are served by WhiteNoise straight from the apps, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Uploaded pictures (offer gallery) through Django's storage API; the app serves them under /media/ unless a
# proxy in front does (docs/OPERATIONS.md).
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("PATRONAGE_MEDIA_ROOT", VAR_DIR / "media"))
PATRONAGE_IMAGE_MAX_BYTES = int(os.environ.get("PATRONAGE_IMAGE_MAX_BYTES", str(5 * 1024 * 1024)))
# Largest gallery picture accepted, a side and in pixels (a small file can decode into gigabytes), and the
# width of the copy the customer panel and the mobile app are served when the original is wider.
PATRONAGE_IMAGE_MAX_SIDE = int(os.environ.get("PATRONAGE_IMAGE_MAX_SIDE", "6000"))
PATRONAGE_IMAGE_MAX_PIXELS = int(os.environ.get("PATRONAGE_IMAGE_MAX_PIXELS", str(25_000_000)))
PATRONAGE_IMAGE_DISPLAY_WIDTH = int(os.environ.get("PATRONAGE_IMAGE_DISPLAY_WIDTH", "1200"))
LOGIN_URL = "admin:login"
# Sign-in throttles (core/throttle.py): how many reverse proxies in front append to X-Forwarded-For (0: the
# peer is the client), and how many failed sign-ins one client address may make in 15 minutes.
PATRONAGE_PROXY_COUNT = int(os.environ.get("PATRONAGE_PROXY_COUNT", "0"))
PATRONAGE_SIGN_IN_ADDRESS_LIMIT = int(os.environ.get("PATRONAGE_SIGN_IN_ADDRESS_LIMIT", "50"))
LOGIN_REDIRECT_URL = "admin:index"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
# Where the file backend (`patronage run`'s default when no EMAIL_HOST is given) writes outgoing mail.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "outbox"))
# SMTP connections a mailing's sender uses at once (each its own thread and database connection).
PATRONAGE_MAILING_CONNECTIONS = int(os.environ.get("PATRONAGE_MAILING_CONNECTIONS", "3"))
# Batches a mailing's sender prepares at once on PostgreSQL (each its own thread, transaction and database
# connection): one renders while the other's statements run in the database.
PATRONAGE_MAILING_PREPARE_LANES = int(os.environ.get("PATRONAGE_MAILING_PREPARE_LANES", "2"))
# What rendering one mailing message may cost (see patronage/mailings/budget.py).
PATRONAGE_MAILING_MAX_OUTPUT = int(os.environ.get("PATRONAGE_MAILING_MAX_OUTPUT", "1000000"))
PATRONAGE_MAILING_MAX_OPERATIONS = int(os.environ.get("PATRONAGE_MAILING_MAX_OPERATIONS", "1000000"))
PATRONAGE_MAILING_RENDER_SECONDS = float(os.environ.get("PATRONAGE_MAILING_RENDER_SECONDS", "5"))
PATRONAGE_EMAIL_LIST_MAX_BYTES = int(os.environ.get("PATRONAGE_EMAIL_LIST_MAX_BYTES", str(50 * 1024 * 1024)))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Patronage <noreply@localhost>")
# The address customers reach this server at, for absolute links in mail (the unsubscribe link).
PATRONAGE_PUBLIC_URL = os.environ.get("PATRONAGE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# How long the worker waits on a webhook's server (to connect, then each read) before the call has failed.
PATRONAGE_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("PATRONAGE_WEBHOOK_TIMEOUT_SECONDS", "5"))

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Integration API limits
PATRONAGE_MAX_BODY_BYTES = int(os.environ.get("PATRONAGE_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = PATRONAGE_MAX_BODY_BYTES
PATRONAGE_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# A reservation whose request never finished (the process died) may be taken over after this long.
PATRONAGE_IDEMPOTENCY_STALE_SECONDS = int(os.environ.get("PATRONAGE_IDEMPOTENCY_STALE_SECONDS", "60"))
# How long a server process may trust an API key it looked up (revocation reaches other processes this late).
PATRONAGE_API_KEY_CACHE_SECONDS = float(os.environ.get("PATRONAGE_API_KEY_CACHE_SECONDS", "2"))
# Region assumed for phone numbers written without a +country prefix.
# A session, profile or event request waiting longer than this for another request's row lock answers 409,
# as Talon.One does for parallel requests for one customer (PostgreSQL).
PATRONAGE_LOCK_WAIT_MS = int(os.environ.get("PATRONAGE_LOCK_WAIT_MS", "2000"))
PATRONAGE_PHONE_REGION = os.environ.get("PATRONAGE_PHONE_REGION", "US")
# Largest CSV a staff member may upload (Import/Export); kept in the database until its job has run.
PATRONAGE_IMPORT_MAX_BYTES = int(os.environ.get("PATRONAGE_IMPORT_MAX_BYTES", str(512 * 1024 * 1024)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

UNFOLD = {
    "SITE_TITLE": "Patronage",
    "SITE_HEADER": "Patronage",
    "SITE_SYMBOL": "loyalty",
    "SHOW_HISTORY": True,
    "DASHBOARD_CALLBACK": "patronage.home.dashboard.dashboard_callback",
    "LOGIN": {"form": "patronage.core.admin_login.LoginForm"},
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "patronage.core.sidebar.navigation",
    },
}
