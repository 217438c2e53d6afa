"""Settings for the portal benchmark only (bench.portal): production settings, plus a URLconf with
the baseline view, and plain static storage (no collectstatic manifest to build first)."""

from config.settings import *  # noqa: F403
from config.settings import STORAGES

ROOT_URLCONF = "bench.portal_urls"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
