"""anymail signal receivers: its views check the webhook secret and normalise each provider's
payload; these hand the result to the services."""

from typing import Any

from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, inbound, tracking
from django.dispatch import receiver

from crm.services.inbound import inbound_receive
from crm.services.tracking import message_track


@receiver(tracking, dispatch_uid="crm.tracking")
def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    message_track(
        event_type=event.event_type,
        provider_message_id=event.message_id,
        outbox_id=(event.metadata or {}).get("outbox_id"),
        timestamp=event.timestamp,
        description=event.description or event.mta_response or event.reject_reason or "",
    )


@receiver(inbound, dispatch_uid="crm.inbound")
def on_inbound(sender: Any, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    if event.message is not None:
        inbound_receive(email=event.message)
