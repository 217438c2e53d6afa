"""Test settings: the real settings, with the few things a test run must not do."""

import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")

from .settings import *  # noqa: F403
from .settings import CACHES, Q_CLUSTER, STORAGES

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The cache may be a Redis shared by earlier runs and parallel workers, whose rows had the same ids:
# each test process keeps its own keys, so nothing another one kept (a page) is served here.
CACHES = {**CACHES, "default": {**CACHES["default"], "KEY_PREFIX": f"portal-test-{uuid.uuid4().hex[:12]}"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Plain storage: live_server serves files as they are, without a collectstatic manifest.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# Files of a test run go to a folder of their own, removed when the run ends (tests/conftest.py).
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="portal-test-media-"))
STORAGES["default"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": MEDIA_ROOT, "base_url": "/media-not-served/"},
}
SECURE_SSL_REDIRECT = False
# Tasks run in the calling thread; tests that need the queue call task functions themselves.
Q_CLUSTER = {**Q_CLUSTER, "sync": True, "log_level": "WARNING"}
SITE_URL = "http://testserver"
# Tests travel in time with a signed-in client: no idle sign-out unless a test asks for it
# (tests/crm/test_staff_sessions.py sets 12 hours).
STAFF_SESSION_IDLE_HOURS = 24 * 365 * 100
# Serve static files from the app and project folders, as collected in production.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
SMS_BACKEND = "crm.sms.MemorySmsBackend"
ANYMAIL = {"WEBHOOK_SECRET": "hook:test-secret", "POSTMARK_SERVER_TOKEN": "test", "SENDGRID_API_KEY": "test"}
ANYMAIL_WEBHOOKS_ENABLED = True  # the secret above guards them
# The two providers whose documented payloads the webhook tests post.
ANYMAIL_WEBHOOK_ESPS = ["postmark", "sendgrid"]
INBOUND_EMAIL_DOMAIN = "reply.example.com"
# Two-factor sign-in is optional here as in development; its tests turn it on (settings fixture).
STAFF_2FA_REQUIRED = False
