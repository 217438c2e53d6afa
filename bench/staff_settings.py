"""Settings for the staff-pages benchmark only (bench.staff_scale): production settings with plain
static storage (no collectstatic manifest to build first)."""

import warnings

from config.settings import *  # noqa: F403
from config.settings import STORAGES

# Static files are found in the app folders here (no collectstatic): whitenoise says so once; it
# is not news.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
