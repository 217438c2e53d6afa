"""Settings for the portal benchmark only (bench.portal): production settings, plus a URLconf with
the baseline view, and plain static storage (no collectstatic manifest to build first)."""

import warnings

from config.settings import *  # noqa: F403
from config.settings import STORAGES

# Static files are served from the app folders here (no collectstatic): whitenoise says so once per
# worker; it is not news.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

ROOT_URLCONF = "bench.portal_urls"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
