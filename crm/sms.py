"""Sending SMS: a backend is any class with ``send(to, text, *, reference) -> provider message id``.

To plug a real provider, write such a class (it calls the provider's API and raises SmsError on
refusal) and point the SMS_BACKEND setting at it. The outbox handles retries and status.
``reference`` is the outbox id of the message: a backend passes it as the provider's client
reference where its API has one, so a status report or a resend can be matched to the row.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import ClassVar, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The provider failed to take the SMS this time (down, slow, rate-limited): the outbox tries
    again with its backoff."""


class SmsRefused(SmsError):
    """The provider refused the SMS for good (an invalid or unreachable number, a blocked
    recipient): the message fails at once with ``reason``. ``opted_out`` when the recipient
    unsubscribed from our texts (replied STOP to the provider): their SMS consent is withdrawn."""

    def __init__(self, reason: str, *, opted_out: bool = False, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.opted_out = opted_out
        self.code = code


class SmsBackend(Protocol):
    def send(self, to: str, text: str, *, reference: str = "") -> str: ...


class ConsoleSmsBackend:
    """Prints each SMS (make run): what the customer would read on their phone."""

    _ids = itertools.count(1)

    def send(self, to: str, text: str, *, reference: str = "") -> str:
        provider_id = f"console-{next(self._ids)}"
        print(f"--- SMS to {to} ({provider_id}, outbox {reference or '-'}) ---\n{text}\n---", flush=True)
        return provider_id


@dataclass(frozen=True)
class SentSms:
    to: str
    text: str
    provider_id: str
    reference: str = ""


class MemorySmsBackend:
    """Keeps each SMS in ``outbox`` (tests), like Django's locmem email backend."""

    outbox: ClassVar[list[SentSms]] = []

    def send(self, to: str, text: str, *, reference: str = "") -> str:
        provider_id = f"memory-{len(self.outbox) + 1}"
        self.outbox.append(SentSms(to=to, text=text, provider_id=provider_id, reference=reference))
        return provider_id


def get_sms_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()
