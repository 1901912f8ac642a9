"""Settings for cw.

Everything deployment-specific comes from the environment; the defaults are for a
developer's laptop and are deliberately unfit for production (an insecure secret key,
DEBUG on, loopback hosts only).
"""

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

# SQLITE_OPTIONS is a setting too: tests open extra SQLite files with the default's options.
from cw_project.database import SQLITE_OPTIONS as SQLITE_OPTIONS
from cw_project.database import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-development-only-never-use-this-key-in-production"
)
DEBUG = _env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "cw_project.apps.CwAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_extensions",
    "ninja",
    "axes",
    "core",
    "agents",
    "reviews",
    "operations",
]

MIDDLEWARE = [
    # First: a foreign Host under the API, or a chunked body a WSGI server leaves
    # unread, is answered before any middleware reads the request.
    "cw_project.unreadable_requests.UnreadableRequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ from STATIC_ROOT in every process, gunicorn included: nothing else
    # serves the admin's CSS and the API docs' Swagger assets when DEBUG is off.
    "cw_project.static_files.StaticFilesMiddleware",
    # Early: a URL with a NUL or non-UTF-8 bytes gets a 400 before any other work.
    "cw_project.middleware.RejectUnstorableUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names who acts (the admin's user; the API's caller once authenticated) for events.
    "cw_project.actor_middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out login attempt (see "Logins" below).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cw_project.urls"
WSGI_APPLICATION = "cw_project.wsgi.application"
ASGI_APPLICATION = "cw_project.asgi.application"

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

# --- Database -------------------------------------------------------------------------
# The embedded default is a SQLite file under var/ (git ignores it), in WAL mode with a
# busy timeout and IMMEDIATE transactions (cw_project/database.py says why).
# DATABASE_URL switches to PostgreSQL (postgres://user@host:port/name), or to another
# SQLite file (sqlite:////path/to/file.sqlite3) run the same way as the default.
SQLITE_PATH = Path(os.environ.get("CW_SQLITE_PATH", BASE_DIR / "var" / "cw.sqlite3"))
DATABASES = {
    "default": database_settings(
        os.environ.get("DATABASE_URL"),
        sqlite_path=SQLITE_PATH,
        test_suffix=str(os.getpid()),
        prepare_threshold=os.environ.get("CW_PG_PREPARE_THRESHOLD", "5"),
        # Seconds a connection is kept for the next request of its thread. Under
        # `make serve` the threads are cw_project.asgi's pool, so a process holds at most
        # CW_ASGI_THREADS connections; runserver closes a thread's when the thread ends.
        conn_max_age=int(os.environ.get("CW_DB_CONN_MAX_AGE", "60")),
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Logins ---------------------------------------------------------------------------
# django-axes counts failed admin logins per username and address (in the database, so
# every worker sees them): after CW_LOGIN_FAILURE_LIMIT failures in a row that pair is
# locked out for CW_LOGIN_COOLOFF_MINUTES (429, templates/axes/locked_out.html) and a
# success resets the count. Locking the pair, not the user alone, keeps a stranger from
# locking a person out by mistyping on purpose. `manage.py axes_reset` lifts every
# lock-out; the admin lists attempts under "Axes". Behind a proxy (CW_BEHIND_PROXY) the
# address is the client's, from X-Forwarded-For.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("CW_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CW_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "axes/locked_out.html"
if _env_bool("CW_BEHIND_PROXY", False):
    AXES_IPWARE_PROXY_COUNT = 1
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:  # a client could write any X-Forwarded-For it likes
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- API limits -----------------------------------------------------------------------
# Writes (POST, PUT, PATCH, DELETE) each token may make per minute, counted in the
# database so the limit holds across processes (core/ratelimits.py); beyond it the API
# answers 429 with Retry-After. 0 turns the limit off. Body size, page sizes, log batches
# and long-poll waits have caps of their own (README, "Limits").
CW_API_WRITE_RATE_LIMIT = int(os.environ.get("CW_API_WRITE_RATE_LIMIT", "3000"))
# Expensive reads (lists, and each read of a long poll or a stream) each token may have
# running at once, across every worker process of the host (core/readlimits.py): a list
# finding none free answers 429 reads_throttled with Retry-After at once; a long poll's or
# a stream's read waits for one. Keeps one token's loop of big pages from starving every
# other caller of the workers. 0 turns the cap off.
CW_API_READ_CONCURRENCY = int(os.environ.get("CW_API_READ_CONCURRENCY", "2"))
# Where processes of this host keep the files they flock to share limits (the read cap's
# slots); created on demand.
CW_LOCK_DIR = Path(os.environ.get("CW_LOCK_DIR", BASE_DIR / "var" / "locks"))
# cw's own bare mirror of each project's repository (core.mirrors), read to show a
# phase's diff for review; fetched by cw_fetch, the project page's button and the API.
CW_MIRRORS_DIR = Path(os.environ.get("CW_MIRRORS_DIR", BASE_DIR / "var" / "mirrors"))
# The demo's own git repositories (bare, one per demo project, ``<name>.git``), which
# ``manage.py cw_demo`` creates once and its projects' file:// URLs point at; next to
# the mirrors by default, so they live in var/ whatever the database is.
CW_DEMO_REPOS_DIR = Path(os.environ.get("CW_DEMO_REPOS_DIR", CW_MIRRORS_DIR.parent / "demo-repos"))
# The most bytes of text one page of a list of long texts holds (an agent's log, a chat's
# messages), besides its row limit: the page stops before the item that would pass it
# (always one item at least) and answers more=true (core/repositories/pagination.py).
CW_API_PAGE_MAX_BYTES = int(os.environ.get("CW_API_PAGE_MAX_BYTES", "4000000"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `collectstatic` gathers the files here (var/ is git-ignored); WhiteNoise serves them.
STATIC_ROOT = Path(os.environ.get("CW_STATIC_ROOT", BASE_DIR / "var" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Without DEBUG, file names carry a content hash (so WhiteNoise can let browsers cache
    # them for ever) and are served compressed; that needs the manifest `collectstatic`
    # writes. With DEBUG (runserver), files are served as they are in the apps.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- HTTPS ----------------------------------------------------------------------------
# Off by default so `make run` serves plain HTTP on loopback. In production, behind a
# proxy that terminates TLS, CW_HTTPS=true redirects HTTP to HTTPS, sends HSTS and keeps
# the session and CSRF cookies off plain HTTP; CW_BEHIND_PROXY=true trusts the proxy's
# X-Forwarded-Proto (only safe when the proxy sets it and clients cannot reach cw directly).
CW_HTTPS = _env_bool("CW_HTTPS", False)
SECURE_SSL_REDIRECT = CW_HTTPS
SESSION_COOKIE_SECURE = CW_HTTPS
CSRF_COOKIE_SECURE = CW_HTTPS
# A year, with subdomains and the preload flag, as `check --deploy` asks. An operator
# whose other subdomains are not on HTTPS yet turns those two off (and `check --deploy`
# then says so, as it should): browsers keep refusing plain HTTP for the whole lifetime.
SECURE_HSTS_SECONDS = int(os.environ.get("CW_HSTS_SECONDS", "31536000")) if CW_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = CW_HTTPS and _env_bool("CW_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = CW_HTTPS and _env_bool("CW_HSTS_PRELOAD", True)
if _env_bool("CW_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Origins (scheme and host) allowed to POST forms, e.g. https://cw.example.com.
CSRF_TRUSTED_ORIGINS = _env_list("CW_CSRF_TRUSTED_ORIGINS", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CW_LOG_LEVEL", "WARNING")},
}

# --- Secrets at rest ------------------------------------------------------------------
# Fernet keys encrypting accounts.config_json and accounts.credentials (agents.secrets).
# CW_SECRET_KEYS is comma-separated: the first key encrypts, every key decrypts, so a key
# is rotated by putting a new one first, running the re-encryption, then dropping the old.
# Production MUST set CW_SECRET_KEYS (make a key with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
# Unset, one development key is derived from SECRET_KEY so `make run` needs no set-up;
# changing SECRET_KEY then makes the stored secrets unreadable.
CW_SECRET_KEYS = _env_list("CW_SECRET_KEYS", "") or [
    base64.urlsafe_b64encode(hashlib.sha256(b"cw-secrets:" + SECRET_KEY.encode()).digest()).decode()
]
