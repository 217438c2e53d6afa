"""Outbound webhooks, written like messages: each event a subscribed endpoint wants is an outbox
row (WebhookDelivery) stored in the transaction of the change it tells of, handed to the workers
after commit (crm.services.webhook_delivery sends and signs it).

The job's log is where every change is written (crm.services.events), so that is where the events
are found: a JobEvent of a kind below becomes its webhook event, with the log line's details as
its data. ``commitment.at_risk`` has no log line (the morning digest is not a change of the job):
the digest emits it itself.

Also the managers' writes about endpoints: create, change, rotate the secret, turn back on, and
send a delivery again.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Commitment, Job, JobEvent, WebhookDelivery, WebhookEndpoint
from crm.models.integrations import new_webhook_secret
from crm.services.broker import push, push_on_commit
from crm.text import person_name

EventType = WebhookEndpoint.EventType
Kind = JobEvent.Kind

# The log's kinds that are webhook events, and the event each becomes.
EVENT_OF_KIND: dict[str, str] = {
    Kind.CREATED: EventType.JOB_CREATED,
    Kind.STAGE_ADVANCED: EventType.JOB_STAGE_CHANGED,
    Kind.STAGE_REVERTED: EventType.JOB_STAGE_CHANGED,
    Kind.DATE_MOVED: EventType.MILESTONE_DATE_MOVED,
    Kind.PROMISE_BROKEN: EventType.COMMITMENT_BROKEN,
    Kind.REQUEST_RECEIVED: EventType.REQUEST_RECEIVED,
    Kind.MESSAGE_FAILED: EventType.MESSAGE_FAILED,
    Kind.MESSAGE_BOUNCED: EventType.MESSAGE_FAILED,
    Kind.SURVEY_ANSWERED: EventType.SURVEY_ANSWERED,
    Kind.VISIT_BOOKED: EventType.VISIT_BOOKED,
    Kind.VISIT_MOVED: EventType.VISIT_MOVED,
    Kind.VISIT_CONFIRMED: EventType.VISIT_CONFIRMED,
    Kind.VISIT_ON_THE_WAY: EventType.VISIT_ON_THE_WAY,
    Kind.VISIT_RUNNING_LATE: EventType.VISIT_RUNNING_LATE,
    Kind.VISIT_ARRIVED: EventType.VISIT_ARRIVED,
    Kind.VISIT_DONE: EventType.VISIT_DONE,
    Kind.VISIT_CANCELLED: EventType.VISIT_CANCELLED,
    Kind.VISIT_MISSED: EventType.VISIT_MISSED,
}

DELIVER_TASK = "crm.tasks.deliver_webhooks"
DELIVER_BATCH = 20

# The API key an API call acts with: set for the length of the call, named on each log line.
_api_key: ContextVar[str] = ContextVar("crm_acting_api_key", default="")


@contextmanager
def acting_via(api_key_name: str) -> Any:
    """Every log line written inside says it came through this API key (``api_key``, and ``via``:
    “API key “ERP”” for other systems; the job's history says it in the reader's language)."""
    token = _api_key.set(api_key_name)
    try:
        yield
    finally:
        _api_key.reset(token)


def current_via() -> dict[str, str]:
    """What a log line written now carries about how it came (nothing outside an API call)."""
    name = _api_key.get()
    return {"via": f"API key “{name}”", "api_key": name} if name else {}


# --- Emitting -----------------------------------------------------------------------------------


def _event_types(event: JobEvent) -> list[str]:
    """The webhook events one log line is (none, one, or a survey's answered and low score)."""
    types = [EVENT_OF_KIND[event.kind]] if event.kind in EVENT_OF_KIND else []
    if event.kind == Kind.SURVEY_ANSWERED and event.data.get("low"):
        types.append(EventType.SURVEY_LOW_SCORE)
    return types


def _subscribers(types: set[str]) -> dict[str, list[int]]:
    """The active endpoints wanting each of ``types`` (one query; none when nothing is wanted)."""
    if not types:
        return {}
    wanted: dict[str, list[int]] = {}
    for pk, event_types in WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "event_types"):
        for event_type in set(event_types) & types:
            wanted.setdefault(event_type, []).append(pk)
    return wanted


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Dates and decimals as the log stores them (ISO 8601 text)."""
    result: dict[str, Any] = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    return result


def _moment(moment: Any) -> str:
    """A time as every payload writes it (DjangoJSONEncoder's: UTC, milliseconds, ``Z``)."""
    return str(DjangoJSONEncoder().default(moment))


def job_summary(job: Job) -> dict[str, Any]:
    """The job as every event names it (fields on the row itself: no query)."""
    return {"id": str(job.public_id), "reference": job.reference, "title": job.title, "status": job.status}


def payload_of(event: JobEvent, event_type: str) -> dict[str, Any]:
    """The Standard Webhooks shape: type, timestamp, data."""
    return {
        "type": event_type,
        "timestamp": _moment(event.created_at),
        "data": {
            "job": job_summary(event.job),
            "event": {
                "id": event.pk,
                "kind": event.kind,
                "by": person_name(event.actor) if event.actor else None,
                "via": event.data.get("via") or None,
            },
            "details": _jsonable({k: v for k, v in event.data.items() if k not in ("via", "api_key")}),
        },
    }


def _store(rows: list[WebhookDelivery]) -> None:
    if not rows:
        return
    stored = WebhookDelivery.objects.bulk_create(rows)
    enqueue_on_commit([row.pk for row in stored])


def events_emit(events: Iterable[JobEvent]) -> None:
    """The webhook deliveries the log lines ``events`` call for, stored with them (called by
    crm.services.events inside the caller's transaction)."""
    events = list(events)
    subscribers = _subscribers({t for event in events for t in _event_types(event)})
    if not subscribers:
        return
    unloaded = {e.job_id for e in events if not JobEvent.job.is_cached(e)}  # type: ignore[attr-defined]
    jobs = Job.objects.in_bulk(unloaded) if unloaded else {}
    rows: list[WebhookDelivery] = []
    for event in events:
        if event.job_id in jobs:
            event.job = jobs[event.job_id]
        for event_type in _event_types(event):
            payload = payload_of(event, event_type)
            rows.extend(
                WebhookDelivery(endpoint_id=pk, event_type=event_type, job_id=event.job_id, payload=payload)
                for pk in subscribers.get(event_type, [])
            )
    _store(rows)


def commitments_at_risk_emit(commitments: Iterable[Commitment], *, now: Any = None) -> None:
    """``commitment.at_risk`` for each promise the morning digest names (its job loaded)."""
    subscribers = _subscribers({EventType.COMMITMENT_AT_RISK}).get(EventType.COMMITMENT_AT_RISK, [])
    if not subscribers:
        return
    stamp = _moment(now or timezone.now())
    rows: list[WebhookDelivery] = []
    for commitment in commitments:
        payload = {
            "type": EventType.COMMITMENT_AT_RISK,
            "timestamp": stamp,
            "data": {
                "job": job_summary(commitment.job),
                "commitment": {
                    "id": commitment.pk,
                    "kind": commitment.kind,
                    "title": commitment.title,
                    "due_at": _moment(commitment.due_at),
                },
            },
        }
        rows.extend(
            WebhookDelivery(
                endpoint_id=pk, event_type=EventType.COMMITMENT_AT_RISK, job_id=commitment.job_id, payload=payload
            )
            for pk in subscribers
        )
    _store(rows)


def enqueue_now(delivery_ids: list[int], *, broker: Any = None) -> None:
    push(DELIVER_TASK, delivery_ids, batch=DELIVER_BATCH, name="webhooks", broker=broker)


def enqueue_on_commit(delivery_ids: Iterable[int]) -> None:
    """After commit, to the workers; a lost enqueue loses nothing (the sweep finds the row)."""
    push_on_commit(lambda ids, broker: enqueue_now(ids, broker=broker), delivery_ids, what="webhook deliveries")


# --- Endpoints ----------------------------------------------------------------------------------


def is_private_host(host: str) -> bool:
    """Whether ``host`` is, or resolves to, an address no public service has (loopback, private,
    link-local, reserved)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False  # not resolvable now: checked again when sent
    for text in addresses:
        address = ipaddress.ip_address(str(text).split("%")[0])
        if not address.is_global:
            return True
    return False


def check_url(url: str) -> str:
    """An endpoint's URL as the product accepts it: https, and never a private or loopback address,
    unless WEBHOOK_ALLOW_PRIVATE (local development and tests)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DomainError(_("Enter the endpoint's full address, starting with https://."))
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return url
    if parts.scheme != "https":
        raise DomainError(_("Webhooks are sent over https only: the address must start with https://."))
    if parts.hostname == "localhost" or is_private_host(parts.hostname):
        raise DomainError(_("That address is private or local: webhooks go to public addresses only."))
    return url


def _check_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [t for t in chosen if t not in EventType.values]
    if unknown:
        raise DomainError(_("Unknown event type: %(types)s.") % {"types": ", ".join(unknown)})
    if not chosen:
        raise DomainError(_("Choose at least one event to send."))
    return chosen


@transaction.atomic
def endpoint_create(*, url: str, event_types: Iterable[str], description: str, actor: User) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url=check_url(url), event_types=_check_types(event_types), description=description.strip(), created_by=actor
    )


@transaction.atomic
def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, event_types: Iterable[str], description: str
) -> WebhookEndpoint:
    endpoint.url = check_url(url)
    endpoint.event_types = _check_types(event_types)
    endpoint.description = description.strip()
    endpoint.save(update_fields=["url", "event_types", "description"])
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, overlap_hours: int = 24) -> WebhookEndpoint:
    """A new secret; the old one signs too for ``overlap_hours`` (both signatures are sent), so a
    receiver can switch without dropping a delivery."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = timezone.now() + timedelta(hours=overlap_hours)
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["previous_secret", "previous_secret_until", "secret"])
    return endpoint


@transaction.atomic
def endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Pause or turn back on (a turned-on endpoint starts with no failures counted)."""
    endpoint.is_active = active
    if active:
        endpoint.disabled_at = None
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
    else:
        # Paused: no reason, which is what tells it from one turned off after failing.
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = ""
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "failing_since"])
    return endpoint


@transaction.atomic
def delivery_send_again(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue a delivery once more, with the same webhook-id (a receiver that had it dedupes)."""
    [delivery] = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk)
    if delivery.status == WebhookDelivery.Status.SENDING:
        raise DomainError(_("This delivery is being sent right now."))
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = None
    delivery.attempts = 0
    delivery.save(update_fields=["status", "next_attempt_at", "attempts"])
    enqueue_on_commit([delivery.pk])
    return delivery
