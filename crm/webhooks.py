"""anymail signal receivers: its views check the webhook secret and normalise each provider's
payload; these hand the result to the services, with every value cleaned of what the database
refuses. Postmark's inbound view is anymail's, given a payload its email library can hold."""

import logging
from typing import Any

from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, inbound, tracking
from anymail.webhooks.base import AnymailBaseWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from django.core.exceptions import SuspiciousOperation
from django.dispatch import receiver
from django.http import HttpRequest

from crm.services.inbound import inbound_keep_raw, inbound_receive
from crm.services.tracking import message_track
from crm.text import clean_text

logger = logging.getLogger(__name__)

# A provider's diagnostic is kept as far as a message's last error keeps it.
DESCRIPTION_MAX = 2000
# Message.provider_message_id's length.
PROVIDER_ID_MAX_LENGTH = 255
# Our outbox ids: a primary key, well inside a 64-bit integer (a longer number would overflow the
# query instead of finding nothing).
OUTBOX_ID_MAX_DIGITS = 18


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    return value


def _with_contents(payload: Any) -> Any:
    """Postmark sends an empty attachment with ``"Content": ""``, which anymail reads as missing
    (it then looks for a "Data" key and fails): given one."""
    if isinstance(payload, dict) and isinstance(payload.get("Attachments"), list):
        payload["Attachments"] = [
            {**a, "Data": a.get("Content") or a.get("Data") or ""} if isinstance(a, dict) else a
            for a in payload["Attachments"]
        ]
    return payload


class PostmarkInboundView(PostmarkInboundWebhookView):
    """A JSON body may carry lone surrogates (``"\\ud800"``), on which Python's email library fails
    while anymail builds the message, before any receiver runs — so every retry of the provider
    would fail the same way and the email would be lost. Cleaned first, it arrives; so does an
    empty attachment."""

    def esp_to_anymail_event(self, esp_event: Any) -> AnymailInboundEvent:
        return super().esp_to_anymail_event(_with_contents(_cleaned(esp_event)))


class UnreadablePayload(SuspiciousOperation):
    """A webhook body the provider's parser could not read: a 400 (logged as suspicious), not a
    500 that would make the provider send the same junk again and again."""


def parse_guarded(view_class: type[AnymailBaseWebhookView]) -> type[AnymailBaseWebhookView]:
    """``view_class`` (an anymail webhook view, its credentials checked before it parses) whose
    parsing failure is a 400. Only the parsing: an error in our receivers keeps its own handling
    (an inbound email is kept raw, and only if that fails too does the provider hear a 5xx)."""

    def parse_events(self: AnymailBaseWebhookView, request: HttpRequest) -> list[Any]:
        try:
            return super(guarded, self).parse_events(request)  # type: ignore[misc, arg-type]
        except Exception as error:
            raise UnreadablePayload(f"{view_class.__name__}: {type(error).__name__}") from error

    guarded = type(f"Guarded{view_class.__name__}", (view_class,), {"parse_events": parse_events})
    return guarded


def _provider_message_id(value: Any) -> str | None:
    text = clean_text(str(value)) if value else ""
    # Longer than Message.provider_message_id holds, it cannot be one of ours (nor be stored).
    return text if 0 < len(text) <= PROVIDER_ID_MAX_LENGTH else None


def _outbox_id(value: Any) -> str | None:
    text = str(value) if value is not None else ""
    return text if text.isascii() and text.isdigit() and len(text) <= OUTBOX_ID_MAX_DIGITS else None


@receiver(tracking, dispatch_uid="crm.tracking")
def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    description = event.description or event.mta_response or event.reject_reason or ""
    message_track(
        event_type=event.event_type,
        provider_message_id=_provider_message_id(event.message_id),
        outbox_id=_outbox_id(metadata.get("outbox_id")),
        timestamp=event.timestamp,
        description=clean_text(str(description))[:DESCRIPTION_MAX],
    )


@receiver(inbound, dispatch_uid="crm.inbound")
def on_inbound(sender: Any, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    if event.message is None:
        return
    try:
        inbound_receive(email=event.message)
    except Exception as error:
        # Whatever went wrong (inbound_receive's transaction is rolled back by now), the email is
        # kept as it arrived and the provider hears it was received. Only if keeping it fails too
        # does the error reach anymail, whose 5xx makes the provider deliver it again later.
        logger.exception("Inbound email (%s) could not be filed; keeping it unassigned as it arrived", esp_name)
        inbound_keep_raw(email=event.message, error=error)
