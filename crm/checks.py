"""System checks (``manage.py check``, run by every management command and at start-up): the SMS
provider's settings, so a misconfigured Twilio is said once when the site starts, not in the last
error of every text."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

TWILIO_BACKEND = "crm.sms_twilio.TwilioSmsBackend"


@register()
def sms_backend_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.SMS_BACKEND != TWILIO_BACKEND:
        return []
    from crm.sms_twilio import _configuration

    try:
        _configuration()
    except ImproperlyConfigured as error:
        return [Error(str(error), hint='See README.md, "SMS".', id="crm.E001")]
    return []
