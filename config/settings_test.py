"""Test settings: the real settings, with the few things a test run must not do."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")

from .settings import *  # noqa: F403
from .settings import Q_CLUSTER, STORAGES

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Plain storage: live_server serves files as they are, without a collectstatic manifest.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
SECURE_SSL_REDIRECT = False
# Tasks run in the calling thread; tests that need the queue call task functions themselves.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
SITE_URL = "http://testserver"
