"""Settings, read from the environment.

Every variable is listed in README.md. Defaults are the safe ones: DEBUG is off, and with
DEBUG off the process refuses to start without a real SECRET_KEY.
"""

import os
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_weekdays(name: str, default: str) -> frozenset[int]:
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    days = env_list(name, default)
    unknown = [d for d in days if d.lower()[:3] not in names]
    if unknown:
        raise ImproperlyConfigured(f"{name}: unknown day(s) {unknown}; use mon,tue,wed,thu,fri,sat,sun.")
    if not days:
        raise ImproperlyConfigured(f"{name} is empty: name at least one working day (e.g. mon,tue,wed,thu,fri).")
    return frozenset(names.index(d.lower()[:3]) for d in days)


def env_hours(name: str, default: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in env_str(name, default).split("-"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like 09:00-18:00.") from None
    if start >= end:
        raise ImproperlyConfigured(f"{name}: opening must come before closing.")
    return start, end


def env_region(name: str, default: str) -> str:
    """A country as libphonenumber names it (ISO 3166-1 alpha-2: FR, CA, GB, US)."""
    import phonenumbers

    value = env_str(name, default).upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(f"{name} must be a two-letter country code such as FR, CA, GB or US, not {value!r}.")
    return value


def env_dates(name: str) -> frozenset[date]:
    try:
        return frozenset(date.fromisoformat(d) for d in env_list(name))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be ISO dates separated by commas (2026-12-25,2027-01-01).") from None


# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Production mode (DJANGO_DEBUG off) needs a long random "
            "SECRET_KEY in the environment; for local development set DJANGO_DEBUG=1."
        )
    # Development only: DEBUG is on, so this key never signs anything in production.
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The public address of the site, used in links inside emails and SMS (no request there).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "anymail",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "axes",
    # django-ninja: its Swagger UI templates and static files (vendored in the package: no CDN).
    "ninja",
    "crm",
    "portal",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside the sessions: it sees the session saved, under its final key (portal.access's ticket).
    "portal.middleware.PortalTicketMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "crm.middleware.StaffSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.context_processors.company",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Parsed from the URL, or the SQLite default below (whose NAME is a Path, which DBConfig does not allow).
    DATABASES: dict[str, dj_database_url.DBConfig | dict[str, Any]] = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    # The embedded default: one file, WAL so the web server and the worker can read while the
    # other writes, and IMMEDIATE transactions so concurrent writers queue instead of failing.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or BASE_DIR / "db.sqlite3",
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background work (django-q2) --------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER: dict[str, object] = {
    "name": "portal",
    "workers": env_int("Q_WORKERS", 2),
    # A task that runs longer than this is killed; retry must be longer than timeout.
    "timeout": 60,
    "retry": 120,
    # Our own outbox retries failed sends with backoff; django-q2 must not re-run a task.
    "max_attempts": 1,
    # The outbox rows are the record of every send: django-q2 keeps no copy of successful tasks
    # (failed tasks are still saved), which spares its monitor a database write per message.
    "save_limit": -1,
    "catch_up": False,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# --- Cache and sessions -----------------------------------------------------------------------

# Redis when there is one (shared by every process: rate limits hold across gunicorn workers);
# otherwise each process keeps its own small in-memory cache.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "portal"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Sessions are read from the cache and written through to the database: a portal poll costs no
# session query, a cache loss signs nobody out, and a cache that does not answer (Redis stopped)
# leaves sessions working from the database (crm.sessions).
SESSION_ENGINE = "crm.sessions"
# A staff session ends after this many hours without a request (crm.middleware); a portal session
# keeps SESSION_COOKIE_AGE (Django's two weeks). A password change ends the other sessions.
STAFF_SESSION_IDLE_HOURS = env_int("STAFF_SESSION_IDLE_HOURS", 12)
if STAFF_SESSION_IDLE_HOURS < 1:
    raise ImproperlyConfigured(f"STAFF_SESSION_IDLE_HOURS must be at least 1, not {STAFF_SESSION_IDLE_HOURS}.")
# Who looked at which customer's data (crm.models.AccessRecord) is kept this many days.
ACCESS_LOG_RETENTION_DAYS = env_int("ACCESS_LOG_RETENTION_DAYS", 365)
if ACCESS_LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(f"ACCESS_LOG_RETENTION_DAYS must be at least 1, not {ACCESS_LOG_RETENTION_DAYS}.")

# --- Email (django-anymail) -------------------------------------------------------------------

# ANYMAIL_ESP picks the provider (postmark, mailgun, sendgrid, amazon_ses, brevo, ...). Every
# other ANYMAIL_* variable is handed to anymail without its prefix, e.g.
# ANYMAIL_POSTMARK_SERVER_TOKEN -> ANYMAIL["POSTMARK_SERVER_TOKEN"].
ANYMAIL_ESP = env_str("ANYMAIL_ESP").lower()
ANYMAIL: dict[str, object] = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_") and key != "ANYMAIL_ESP"
}
# How long a call to the provider may take (anymail's default is 30 s): a number of seconds, not
# the string the environment gives, or every send fails before it is made.
if ANYMAIL.get("REQUESTS_TIMEOUT"):
    try:
        ANYMAIL["REQUESTS_TIMEOUT"] = float(str(ANYMAIL["REQUESTS_TIMEOUT"]))
    except ValueError:
        raise ImproperlyConfigured(
            f"ANYMAIL_REQUESTS_TIMEOUT must be a number of seconds, not {ANYMAIL['REQUESTS_TIMEOUT']!r}."
        ) from None
# The ESP's webhooks (/anymail/<esp>/tracking/ and inbound/) change messages and contacts: in
# production they exist only behind their basic-auth secret. A production provider without one
# is refused at start, as a missing SECRET_KEY is.
ANYMAIL_WEBHOOKS_ENABLED = DEBUG or bool(ANYMAIL.get("WEBHOOK_SECRET"))
if ANYMAIL_ESP and not ANYMAIL_WEBHOOKS_ENABLED:
    raise ImproperlyConfigured(
        "ANYMAIL_WEBHOOK_SECRET is not set. With ANYMAIL_ESP in production the webhook URLs need a "
        "'user:password' secret (the same one given to the provider); for local development set DJANGO_DEBUG=1."
    )
# The providers whose webhook URLs are served: the configured one (a webhook URL of another is a
# 404). None without a provider, or in production without the secret.
ANYMAIL_WEBHOOK_ESPS = [ANYMAIL_ESP] if ANYMAIL_ESP and ANYMAIL_WEBHOOKS_ENABLED else []
if env_str("EMAIL_BACKEND"):
    EMAIL_BACKEND = env_str("EMAIL_BACKEND")
elif ANYMAIL_ESP:
    # The providers that honour an idempotency key get it from the outbox (crm/email_backends.py).
    EMAIL_BACKEND = {
        "resend": "crm.email_backends.ResendEmailBackend",
        "brevo": "crm.email_backends.BrevoEmailBackend",
        "sendinblue": "crm.email_backends.BrevoEmailBackend",
    }.get(ANYMAIL_ESP, f"anymail.backends.{ANYMAIL_ESP}.EmailBackend")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Customer care <care@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- Messages to customers ------------------------------------------------------------------

# The name customers know the business by, in every message and on the portal.
COMPANY_NAME = env_str("COMPANY_NAME", "Brightside Installations")
# The number customers can call (the answer to a text saying HELP from a number we don't know).
COMPANY_PHONE = env_str("COMPANY_PHONE")
# Replies to our emails come back as reply+<job token>@INBOUND_EMAIL_DOMAIN through the ESP's
# inbound webhook. Without it, replies are threaded by their In-Reply-To header only.
INBOUND_EMAIL_DOMAIN = env_str("INBOUND_EMAIL_DOMAIN")
# The SMS backend: crm.sms.ConsoleSmsBackend prints, crm.sms.MemorySmsBackend keeps them for tests;
# a real provider is a small class with send(to, text) -> provider id (see crm/sms.py).
SMS_BACKEND = env_str("SMS_BACKEND", "crm.sms.ConsoleSmsBackend")
# A text message is shortened (its link kept whole) to fit in this many segments, each billed as
# one SMS: 160 characters alone or 153 in a longer message in GSM-7, 70 / 67 once one character
# needs UCS-2 (ê, ç, ’, an emoji...). See crm/sms_segments.py.
SMS_MAX_SEGMENTS = env_int("SMS_MAX_SEGMENTS", 3)
# Twilio (SMS_BACKEND = "crm.sms_twilio.TwilioSmsBackend"): the account's SID and auth token (the
# token also checks the signature of Twilio's webhooks), and the sender — a Messaging Service, or
# else TWILIO_FROM: a Twilio number in E.164 form (+33612345678) or an alphanumeric sender ID (up
# to 11 letters, digits and spaces) where the destination country allows one. TWILIO_API_URL
# points the library at another address (the local fake Twilio of tests and trials).
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID")
TWILIO_FROM = env_str("TWILIO_FROM")
TWILIO_API_URL = env_str("TWILIO_API_URL", "https://api.twilio.com").rstrip("/")
# Seconds a call to Twilio may take before it counts as failed (and is retried).
TWILIO_TIMEOUT_SECONDS = env_int("TWILIO_TIMEOUT_SECONDS", 10)
# A failed send is retried with exponential backoff (base, doubled each time, capped at an hour,
# with jitter) until this many attempts; then the message is failed and its owner alerted.
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 5)
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 60)
# A row still "sending" this long after it was claimed is requeued by the sweep (the worker died).
# Longer than the task timeout, and long enough for the ESP's tracking webhook to confirm a send
# whose status save was lost, so a crash does not become a duplicate.
OUTBOX_STUCK_AFTER_SECONDS = env_int("OUTBOX_STUCK_AFTER_SECONDS", 600)
# The JSON API (/api/v1/, api/): calls per minute per key (then 429 with Retry-After), the largest
# request body in bytes (then 413), and how long an Idempotency-Key's answer is kept.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120)
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 65536)
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24)
# Outbound webhooks (crm.services.webhooks, webhook_delivery): seconds a receiver may take; the
# waits before each retry after a 5xx, 408, 429, timeout or refused connection (then failed); an
# endpoint failing without one success this many days is turned off and the managers alerted.
# WEBHOOK_ALLOW_PRIVATE lets endpoints be http:// and local or private addresses (development and
# tests: a receiver on this machine); in production an endpoint is https to a public address only.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# (about 3.2 days in all: inside WEBHOOK_DISABLE_AFTER_DAYS, so every retry is tried).
WEBHOOK_RETRY_SCHEDULE = [60, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", 5)
# A delivery still "sending" this long after it was claimed (its worker stopped) is sent again.
WEBHOOK_STUCK_AFTER_SECONDS = env_int("WEBHOOK_STUCK_AFTER_SECONDS", 300)
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", DEBUG)
# Messages that did not reach their customer are told to their owner in one digest: the first
# failure of a burst opens it, due this many seconds later; the failures until it is sent join it.
STAFF_ALERT_DIGEST_SECONDS = env_int("STAFF_ALERT_DIGEST_SECONDS", 300)
# A request is acknowledged at once with an "answer by" date: the internal target for its kind,
# in business hours, plus a buffer in business days (underpromise, overdeliver).
REQUEST_TARGET_HOURS = {
    "portal": env_int("REQUEST_TARGET_HOURS_PORTAL", 9),
    "email": env_int("REQUEST_TARGET_HOURS_EMAIL", 9),
    "sms": env_int("REQUEST_TARGET_HOURS_SMS", 9),
    "phone": env_int("REQUEST_TARGET_HOURS_PHONE", 4),
    "in_person": env_int("REQUEST_TARGET_HOURS_IN_PERSON", 4),
    "staff": env_int("REQUEST_TARGET_HOURS_STAFF", 9),
}
REQUEST_BUFFER_BUSINESS_DAYS = env_int("REQUEST_BUFFER_BUSINESS_DAYS", 1)
# An open promise this many business days before it falls due nudges its owner, once.
COMMITMENT_WARNING_BUSINESS_DAYS = env_int("COMMITMENT_WARNING_BUSINESS_DAYS", 1)
# How long a portal sign-in link works; an expired one offers to email a fresh link.
PORTAL_LINK_MAX_AGE_DAYS = env_int("PORTAL_LINK_MAX_AGE_DAYS", 30)
# A customer's job page is rendered once per change and kept in the cache at most this many
# seconds (portal.job_page); 0 renders it for every request.
PORTAL_PAGE_CACHE_SECONDS = env_int("PORTAL_PAGE_CACHE_SECONDS", 86400)
if PORTAL_PAGE_CACHE_SECONDS < 0:
    raise ImproperlyConfigured(f"PORTAL_PAGE_CACHE_SECONDS must be 0 or more, not {PORTAL_PAGE_CACHE_SECONDS}.")
# At most one non-essential message (check-in, tip, campaign) per contact per this many days
# (crm.services.cadence). Survey invitations follow the job and are not counted.
NON_ESSENTIAL_CAP_DAYS = env_int("NON_ESSENTIAL_CAP_DAYS", 14)

# --- Auth -------------------------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "crm:home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Sign-in throttling (django-axes) ---------------------------------------------------------

# Staff sign-in (/accounts/login/ and /admin/login/): after AXES_FAILURE_LIMIT failures for one
# username, or from one client address, within the cool-off, every attempt is refused (429,
# crm.views.accounts.sign_in_paused) until AXES_COOLOFF_MINUTES have passed without one; a
# success clears that username's and that address's count. The attempts are database rows
# (axes.AccessAttempt): deleting them in the admin, or a new password chosen from the reset
# link, lets the person in again.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must each be at least 1.")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
# Each separately: guessing one person's password from many places, or many people's from one.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# An attempt while paused counts too and starts the wait again (the page says so).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_LOCKOUT_CALLABLE = "crm.views.accounts.sign_in_paused"
AXES_CLIENT_IP_CALLABLE = "crm.ratelimit.client_ip"
# The client address attempts are counted against (crm.views.accounts.client_ip; also the password
# reset's limit): REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies stand in front, each appending
# the address it received the request from to CLIENT_IP_HEADER — then the address the outermost
# one saw. Only for proxies that do so (a client can write anything in the header before it
# reaches them); behind a proxy without it, everyone is the proxy's address, and one person's
# failures pause everyone's sign-in.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER", "X-Forwarded-For")
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 (no proxy) or more, not {TRUSTED_PROXY_COUNT}.")
if not CLIENT_IP_HEADER.replace("-", "").isalnum():
    raise ImproperlyConfigured(f"CLIENT_IP_HEADER must be a header name (X-Forwarded-For), not {CLIENT_IP_HEADER!r}.")

# --- Two-factor sign-in (django-otp) ----------------------------------------------------------

# A staff member may add a second factor to their password (an authenticator app's code, or one of
# ten backup codes), from Your account → Two-factor sign-in; once they have, every staff page and
# the admin ask for it once a session (crm.access). With STAFF_2FA_REQUIRED, managers and anyone
# with the admin must set it up before anything else, may not turn it off, and the admin accepts
# only a session that gave its code. On in production, off with DJANGO_DEBUG unless asked for.
STAFF_2FA_REQUIRED = env_bool("STAFF_2FA_REQUIRED", not DEBUG)
# The name an authenticator app shows next to its codes.
OTP_TOTP_ISSUER = COMPANY_NAME
# The admin's pages of devices show no secret key or QR code: a lost phone is reset by deleting
# the person's devices there, and they set it up again.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Language and time ------------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Where the team works: "today", business days and opening hours are counted here.
BUSINESS_TIME_ZONE = env_str("BUSINESS_TIME_ZONE", "Europe/Paris")


# Days the team works, opening hours, and days off (promises never fall due on a day off).
WORKING_DAYS = env_weekdays("WORKING_DAYS", "mon,tue,wed,thu,fri")
BUSINESS_HOURS = env_hours("BUSINESS_HOURS", "09:00-18:00")
HOLIDAYS = env_dates("HOLIDAYS")
# The time zone a new contact gets until they choose one.
DEFAULT_CONTACT_TIME_ZONE = env_str("DEFAULT_CONTACT_TIME_ZONE", BUSINESS_TIME_ZONE)
# The country of a phone number typed without its country code (search reads "06 12 34 56 78" so).
PHONE_DEFAULT_REGION = env_region("PHONE_DEFAULT_REGION", "FR")

# --- Static files (whitenoise) ----------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served at the site's root by whitenoise: /favicon.ico, which browsers and crawlers ask for
# whatever the pages link (the pages link static/icons/).
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
# --- Files (photos and documents on jobs) -----------------------------------------------------
# Where the bytes go: the local filesystem (MEDIA_ROOT, outside the code packages, never served
# by URL) or S3-compatible object storage through django-storages. Either way files reach people
# only through the views that check who asks (crm.downloads).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "var" / "media")
MEDIA_URL = "/media-not-served/"
FILE_STORAGE = env_str("FILE_STORAGE", "filesystem")
# A signed URL works at least a second and, as S3 allows, at most a week.
S3_SIGNED_URL_SECONDS = env_int("S3_SIGNED_URL_SECONDS", 60)
if not 1 <= S3_SIGNED_URL_SECONDS <= 7 * 24 * 3600:
    raise ImproperlyConfigured(f"S3_SIGNED_URL_SECONDS must be between 1 and 604800, not {S3_SIGNED_URL_SECONDS}.")
if FILE_STORAGE == "filesystem":
    DEFAULT_FILE_STORAGE_CONFIG: dict[str, Any] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": MEDIA_URL},
    }
elif FILE_STORAGE == "s3":
    if not env_str("S3_BUCKET"):
        raise ImproperlyConfigured("FILE_STORAGE=s3 needs S3_BUCKET (and S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY).")
    DEFAULT_FILE_STORAGE_CONFIG = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "location": env_str("S3_PREFIX"),
            # Private objects: a download is a signed URL valid this many seconds, made for one
            # person by the view that checked them.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": S3_SIGNED_URL_SECONDS,
            "file_overwrite": False,
            "signature_version": "s3v4",
            "addressing_style": env_str("S3_ADDRESSING_STYLE") or None,
        },
    }
else:
    raise ImproperlyConfigured(f"FILE_STORAGE must be filesystem or s3, not {FILE_STORAGE!r}.")
# What customers and staff may send: content types, checked against the content (crm.uploads).
FILE_TYPES = env_list("FILE_TYPES", "image/jpeg,image/png,image/webp,application/pdf")
FILE_MAX_MB = env_int("FILE_MAX_MB", 15)
FILE_JOB_MAX_MB = env_int("FILE_JOB_MAX_MB", 200)
FILES_PER_UPLOAD = env_int("FILES_PER_UPLOAD", 10)
FILE_MAX_MEGAPIXELS = env_int("FILE_MAX_MEGAPIXELS", 50)
if min(FILE_MAX_MB, FILE_JOB_MAX_MB, FILES_PER_UPLOAD, FILE_MAX_MEGAPIXELS) < 1:
    raise ImproperlyConfigured(
        "FILE_MAX_MB, FILE_JOB_MAX_MB, FILES_PER_UPLOAD and FILE_MAX_MEGAPIXELS must each be at least 1."
    )
# A shared PDF up to this size is also attached to its email (0: never; the portal link always).
FILE_EMAIL_ATTACH_MAX_KB = env_int("FILE_EMAIL_ATTACH_MAX_KB", 0)
# Files of jobs closed more than this many months ago are removed (empty: kept).
FILE_RETENTION_MONTHS = env_int("FILE_RETENTION_MONTHS", 0) or None
# Django's own guards on a request: one upload of FILES_PER_UPLOAD files passes, a flood does not.
DATA_UPLOAD_MAX_NUMBER_FILES = FILES_PER_UPLOAD + 5
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o640

STORAGES = {
    "default": DEFAULT_FILE_STORAGE_CONFIG,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Security (production) --------------------------------------------------------------------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# The header only allows submitting the domain to the browsers' preload list; submitting is a
# separate, deliberate step.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # Only behind a proxy that sets this header itself and strips it from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz answers load balancers over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Content-Security-Policy ----------------------------------------------------------------
# Every page (staff, portal, admin, error pages) runs only our own files: no inline script, no eval,
# no <style> element or style="" attribute (htmx is told so in templates/base.html; dynamic
# positions and widths are set from data-style by static/js/css-vars.js). data: images are
# Bootstrap's icons (SVGs inside its CSS). One exception, on one page: the campaign preview allows
# style attributes (crm.views.campaigns.campaign_preview), for the email it shows in a sandboxed
# srcdoc frame, which inherits the page's policy. django-csp 4 builds the header (csp.middleware).
CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
if FILE_STORAGE == "s3":
    # A thumbnail is a redirect to a signed URL of the store: the images come from its host.
    _store = urlsplit(env_str("S3_ENDPOINT_URL"))
    _region = env_str("S3_REGION")
    if _store.netloc:  # another S3-compatible store: the bucket in the path or as a subdomain
        CSP_DIRECTIVES["img-src"] += [f"{_store.scheme}://{_store.netloc}", f"{_store.scheme}://*.{_store.netloc}"]
    elif _region:  # AWS: the bucket's own host, global or regional (or the region's, path style)
        _bucket = env_str("S3_BUCKET")
        CSP_DIRECTIVES["img-src"] += [
            f"https://{_bucket}.s3.amazonaws.com",
            f"https://{_bucket}.s3.{_region}.amazonaws.com",
        ]
        if env_str("S3_ADDRESSING_STYLE") == "path":
            CSP_DIRECTIVES["img-src"] += ["https://s3.amazonaws.com", f"https://s3.{_region}.amazonaws.com"]
    else:  # AWS in a region boto3 finds itself
        CSP_DIRECTIVES["img-src"] += ["https://*.amazonaws.com"]
# Where browsers post what the policy blocked (or would block), e.g. a report collector's URL.
if env_str("CSP_REPORT_URI"):
    CSP_DIRECTIVES["report-uri"] = [env_str("CSP_REPORT_URI")]
# CSP_REPORT_ONLY=1 for a rollout: the same policy as Content-Security-Policy-Report-Only, which
# blocks nothing and reports what it would have blocked (frame-ancestors is not honoured there;
# X-Frame-Options still is).
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY: dict[str, Any] | None = {"DIRECTIVES": CSP_DIRECTIVES}
    CONTENT_SECURITY_POLICY: dict[str, Any] | None = None
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": CSP_DIRECTIVES}
    CONTENT_SECURITY_POLICY_REPORT_ONLY = None
# Browser features no page uses, refused to every page and anything it might embed (a file input
# with "capture" is not the camera API: photos are still taken with camera=()).
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "bluetooth",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# --- Logging ----------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"level": env_str("DJANGO_LOG_LEVEL", "INFO"), "propagate": True}},
}
