"""anymail's own backends, for the providers that take an idempotency key: the outbox's key for
a row (``crm.services.delivery.provider_idempotency_key``, the same on every attempt) goes where
each provider documents it, so a send retried after a lost answer is not delivered twice.

- Resend: the ``Idempotency-Key`` HTTP header of ``POST /emails`` (kept 24 hours).
- Brevo: ``idempotencyKey`` in the JSON ``headers`` of ``POST /v3/smtp/email`` (kept 15 minutes).

The other providers anymail supports (Postmark, SendGrid, Mailgun, Amazon SES, Mailjet, SparkPost,
…) document no such key: for them a resend keeps our ``Message-ID`` header, which mail systems
use to drop duplicates. ``config.settings`` picks these classes when ``ANYMAIL_ESP`` names them.
"""

from __future__ import annotations

from typing import Any

from anymail.backends.brevo import EmailBackend as AnymailBrevoBackend
from anymail.backends.resend import EmailBackend as AnymailResendBackend

# Set on the EmailMessage by crm.services.delivery.build_email.
IDEMPOTENCY_ATTRIBUTE = "outbox_idempotency_key"


def _key(message: Any) -> str:
    return str(getattr(message, IDEMPOTENCY_ATTRIBUTE, "") or "")


class ResendEmailBackend(AnymailResendBackend):
    def build_message_payload(self, message: Any, defaults: Any) -> Any:
        payload = super().build_message_payload(message, defaults)
        if _key(message):
            payload.headers["Idempotency-Key"] = _key(message)
        return payload


class BrevoEmailBackend(AnymailBrevoBackend):
    def build_message_payload(self, message: Any, defaults: Any) -> Any:
        payload = super().build_message_payload(message, defaults)
        if _key(message):
            payload.data["headers"]["idempotencyKey"] = _key(message)
        return payload
