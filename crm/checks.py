"""System checks (``manage.py check``, run by every management command and at start-up): the SMS
provider's settings, so a misconfigured Twilio is said once when the site starts, not in the last
error of every text."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register
from django.core.exceptions import ImproperlyConfigured

from crm.sms_twilio import configuration

TWILIO_BACKEND = "crm.sms_twilio.TwilioSmsBackend"


@register()
def sms_backend_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.SMS_BACKEND != TWILIO_BACKEND:
        return []
    try:
        configuration()
    except ImproperlyConfigured as error:
        # A warning, not an error: the worker must still start (emails go on; each text waits in
        # the queue, its last error saying the same, until the settings are fixed).
        return [Warning(str(error), hint='See README.md, "SMS".', id="crm.W001")]
    return []
