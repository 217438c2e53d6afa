"""Sending webhook deliveries: claim, sign (Standard Webhooks), POST, record — one at a time.

A row is sent only by the worker whose conditional UPDATE moved it from pending to sending (a
duplicate task finds nothing to claim), and its outcome is recorded right after its own request.
A 2xx is delivered; a 5xx, 408, 429, a timeout or a connection error is tried again later
(WEBHOOK_RETRY_SCHEDULE); another 4xx is the receiver's answer and fails at once. An endpoint
failing without a success for WEBHOOK_DISABLE_AFTER_DAYS is turned off and the managers alerted.
A worker killed mid-send leaves a row in sending: the sweep puts it back after a while, so a
receiver may see a webhook-id twice (at least once, as the specification says) — never zero times.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from crm.models import WebhookDelivery, WebhookEndpoint
from crm.services.alerts import alert_staff, managers, staff_url
from crm.services.webhooks import enqueue_now, is_private_host
from crm.sql import update_returning_pks

Status = WebhookDelivery.Status
USER_AGENT = "customer-portal-webhooks/1"
# A response body is read this far, for the log (receivers answer short).
RESPONSE_KEPT = 300
# A row never enqueued (broker down at commit) or whose retry schedule was lost, after this long.
LOST_AFTER = timedelta(minutes=1)


def body_of(delivery: WebhookDelivery) -> bytes:
    """The body exactly as signed and sent (compact JSON, keys in order)."""
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(delivery: WebhookDelivery, body: bytes, *, now: datetime) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (one ``v1,…`` per live secret)."""
    signatures = [
        Webhook(secret).sign(msg_id=delivery.webhook_id, timestamp=now, data=body)
        for secret in delivery.endpoint.signing_secrets(now=now)
    ]
    return {
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def claim(delivery_ids: Iterable[int], *, now: datetime) -> list[WebhookDelivery]:
    claimed = update_returning_pks(
        WebhookDelivery.objects.filter(pk__in=list(delivery_ids), status=Status.PENDING).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        ),
        status=Status.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    return list(WebhookDelivery.objects.select_related("endpoint").filter(pk__in=claimed).order_by("pk"))


def retry_after(attempts: int) -> timedelta | None:
    """When to try again after ``attempts`` tries; None once the schedule is used up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return timedelta(seconds=schedule[attempts - 1])


# A batch that has taken this long puts its unsent rows back for another task: with each request
# bounded (connect CONNECT_SECONDS, answer WEBHOOK_TIMEOUT_SECONDS), a task ends well inside
# Q_CLUSTER's 60 s timeout, so a slow receiver never gets a task killed halfway.
BATCH_SECONDS = 30.0
CONNECT_SECONDS = 5.0


class _PublicPeerOnly:
    """A connection that checks the address it actually reached: one resolved for the check and
    another for the connection (DNS rebinding) cannot take a delivery to a private network."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        if not settings.WEBHOOK_ALLOW_PRIVATE:
            peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%")[0])
            if not peer.is_global:
                sock.close()
                raise NewConnectionError(
                    self,  # type: ignore[arg-type]
                    f"{self.host} resolved to {peer}, a private or local address: not sent",
                )
        return sock


class _PublicHTTPConnection(_PublicPeerOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicPeerOnly, HTTPSConnection):
    pass


class _PublicHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {  # type: ignore[assignment]
            "http": _PublicHTTPConnectionPool,
            "https": _PublicHTTPSConnectionPool,
        }


_sessions: dict[int, requests.Session] = {}


def _session() -> requests.Session:
    """One HTTP session per worker process: its connections are kept alive between deliveries to
    the same receiver (a forked worker starts its own; cookies are never kept)."""
    pid = os.getpid()
    if pid not in _sessions:
        _sessions.clear()
        session = requests.Session()
        # No receiver's cookie is kept (nor sent to it, or anyone, again).
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        for scheme in ("http://", "https://"):
            session.mount(scheme, _PublicAdapter())
        _sessions[pid] = session
    return _sessions[pid]


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """The request: (status code or None, error text)."""
    now = timezone.now()
    body = body_of(delivery)
    host = urlsplit(delivery.endpoint.url).hostname or ""
    if not settings.WEBHOOK_ALLOW_PRIVATE and (host == "localhost" or is_private_host(host)):
        return None, _("The address now points to a private or local network: not sent.")
    try:
        response = _session().post(
            delivery.endpoint.url,
            data=body,
            headers=signed_headers(delivery, body, now=now),
            timeout=(min(CONNECT_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS), settings.WEBHOOK_TIMEOUT_SECONDS),
            allow_redirects=False,
            # The answer's body is read only as far as the log keeps it, whatever its size.
            stream=True,
        )
    except requests.Timeout:
        return None, _("No answer within %(s)s seconds.") % {"s": settings.WEBHOOK_TIMEOUT_SECONDS}
    except requests.RequestException as error:
        return None, (str(error) or type(error).__name__)[:RESPONSE_KEPT]
    with response:
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        try:
            start = response.raw.read(RESPONSE_KEPT, decode_content=True) or b""
        except (requests.RequestException, OSError, ValueError):
            start = b""
    text = start.decode(response.encoding or "utf-8", errors="replace")
    return response.status_code, f"HTTP {response.status_code}: {text}"


def _retryable(code: int | None) -> bool:
    return code is None or code >= 500 or code in (408, 429)


def _record(delivery: WebhookDelivery, code: int | None, error: str, *, took_ms: int) -> str:
    now = timezone.now()
    fields = {"response_code": code, "duration_ms": took_ms, "last_attempt_at": now, "last_error": error[:500]}
    endpoint = delivery.endpoint
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=Status.DELIVERED, delivered_at=now, next_attempt_at=None, **fields
        )
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return Status.DELIVERED
    wait = retry_after(delivery.attempts) if _retryable(code) else None
    with transaction.atomic():
        if wait is None:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED, next_attempt_at=None, **fields)
        else:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.PENDING, next_attempt_at=now + wait, **fields
            )
        _endpoint_failed(endpoint, now=now)
    return Status.FAILED if wait is None else "retry"


def _endpoint_failed(endpoint: WebhookEndpoint, *, now: datetime) -> None:
    """Count the failure against the endpoint; turn it off, the managers told, once it has failed
    without a success for WEBHOOK_DISABLE_AFTER_DAYS."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    limit = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    turned_off = update_returning_pks(
        WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True, failing_since__lte=limit),
        is_active=False,
        disabled_at=now,
        disabled_reason=_("Turned off: every delivery failed for %(days)s days.")
        % {"days": settings.WEBHOOK_DISABLE_AFTER_DAYS},
    )
    if turned_off:
        alert_staff(
            managers(),
            name="webhook-disabled",
            context={
                "url": endpoint.url,
                "days": settings.WEBHOOK_DISABLE_AFTER_DAYS,
                "endpoint_url": staff_url(reverse("crm:webhook", args=[endpoint.pk])),
            },
            key=f"webhook-disabled:{endpoint.pk}:{now.date().isoformat()}",
        )


def deliver_many(*, delivery_ids: Iterable[int]) -> dict[int, str]:
    """Send what can be claimed among ``delivery_ids``; each id's outcome (delivered, retry,
    failed, or skipped when another worker has it or it is not due)."""
    ids = list(delivery_ids)
    outcomes = dict.fromkeys(ids, "skipped")
    began = time.monotonic()
    claimed = claim(ids, now=timezone.now())
    for index, delivery in enumerate(claimed):
        if time.monotonic() - began > BATCH_SECONDS:
            outcomes.update(dict.fromkeys(_release([d.pk for d in claimed[index:]]), "released"))
            break
        if not delivery.endpoint.is_active:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.FAILED, last_error=_("The endpoint is turned off.")
            )
            outcomes[delivery.pk] = Status.FAILED
            continue
        started = time.monotonic()
        code, error = _post(delivery)
        outcomes[delivery.pk] = _record(delivery, code, error, took_ms=int((time.monotonic() - started) * 1000))
    return outcomes


def _release(delivery_ids: list[int]) -> list[int]:
    """Back to pending, their claim's attempt given back (nothing was sent), and to the workers."""
    released = update_returning_pks(
        WebhookDelivery.objects.filter(pk__in=delivery_ids, status=Status.SENDING),
        status=Status.PENDING,
        claimed_at=None,
        attempts=F("attempts") - 1,
    )
    if released:
        enqueue_now(released)
    return released


def sweep(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Put back what no worker will finish (a worker that stopped mid-send) and enqueue what is
    due but was never enqueued or whose retry was never enqueued."""
    now = now or timezone.now()
    requeued = update_returning_pks(
        WebhookDelivery.objects.filter(
            status=Status.SENDING, claimed_at__lt=now - timedelta(seconds=settings.WEBHOOK_STUCK_AFTER_SECONDS)
        ),
        status=Status.PENDING,
        next_attempt_at=now,
    )
    due = list(
        WebhookDelivery.objects.filter(status=Status.PENDING)
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lt=now - LOST_AFTER))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    if due:
        enqueue_now(due)
    return {"requeued": len(requeued), "enqueued": len(due)}
