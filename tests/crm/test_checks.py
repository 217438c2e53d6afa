"""The system check of the SMS provider's settings: a misconfigured Twilio is said at start-up."""

from __future__ import annotations

from crm.checks import TWILIO_BACKEND, sms_backend_configured

SID = "AC" + "1" * 32


def test_the_console_or_memory_backend_needs_nothing(settings) -> None:
    assert sms_backend_configured() == []


def test_twilio_without_its_keys_or_sender_is_a_warning_saying_what_to_set(settings) -> None:
    settings.SMS_BACKEND = TWILIO_BACKEND
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "", ""
    [error] = sms_backend_configured()
    assert error.id == "crm.W001" and "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in error.msg
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = SID, "token"
    settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM = "", ""
    [error] = sms_backend_configured()
    assert "needs a sender" in error.msg
    settings.TWILIO_FROM = "Brightside"
    assert sms_backend_configured() == []
