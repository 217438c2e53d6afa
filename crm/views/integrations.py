"""The managers' integration settings: API keys (made and shown once, revoked) and outbound webhook
endpoints (added, changed, their signing secret rotated, paused and turned back on, a delivery sent
again), with each endpoint's delivery log.

Managers only (crm.access.manager_required: anyone else on the staff gets the 403 page). Every
write is a service call (crm.services.api_keys, crm.services.webhooks); a DomainError they raise
is shown as a form error or a flash message. A page that shows a secret is never stored by a
browser or a proxy (Cache-Control: no-store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Model, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm.access import StaffRequest, manager_required
from crm.errors import DomainError
from crm.forms.integrations import ApiKeyForm, EndpointActiveForm, WebhookEndpointForm
from crm.ids import id_from_input
from crm.models import ApiKey, WebhookDelivery, WebhookEndpoint
from crm.services.api_keys import api_key_create, api_key_revoke
from crm.services.webhooks import (
    delivery_send_again,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_set_active,
    endpoint_update,
)

# The endpoint page's delivery log: the latest ones, newest first.
DELIVERIES_SHOWN = 50
# How long the old signing secret keeps signing after a rotation (both signatures are sent).
ROTATION_OVERLAP_HOURS = 24
# The rows "Send again" is offered on: sending ones are in flight, pending ones are on their way.
SENDABLE_AGAIN = (WebhookDelivery.Status.FAILED, WebhookDelivery.Status.DELIVERED)


# --- Lookups ------------------------------------------------------------------------------------


def _id_or_404(value: Any, model: type[Model]) -> int:
    pk = id_from_input(value, model)
    if pk is None:
        raise Http404
    return pk


def _get_key(pk: Any) -> ApiKey:
    key = ApiKey.objects.filter(pk=_id_or_404(pk, ApiKey)).first()
    if key is None:
        raise Http404
    return key


def _get_endpoint(pk: Any) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=_id_or_404(pk, WebhookEndpoint)).first()
    if endpoint is None:
        raise Http404
    return endpoint


def _get_delivery(pk: Any) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.defer("payload").filter(pk=_id_or_404(pk, WebhookDelivery)).first()
    if delivery is None:
        raise Http404
    return delivery


# --- What the pages list ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    scopes: list[str]  # their labels, in the reader's language


@dataclass(frozen=True)
class EndpointRow:
    endpoint: WebhookEndpoint
    events: list[str]  # their labels, in the reader's language


def _labels(values: list[str], choices: Any) -> list[str]:
    """The labels of ``values`` (a key's scopes, an endpoint's events); a value no longer offered
    is shown as it is stored."""
    labels = dict(choices)
    return [str(labels.get(value, value)) for value in values]


def _keys() -> list[KeyRow]:
    keys: QuerySet[ApiKey] = ApiKey.objects.select_related("owner", "created_by", "revoked_by")
    return [KeyRow(key, _labels(key.scopes, ApiKey.Scope.choices)) for key in keys]


def _endpoints() -> list[EndpointRow]:
    return [
        EndpointRow(endpoint, _labels(endpoint.event_types, WebhookEndpoint.EventType.choices))
        for endpoint in WebhookEndpoint.objects.all()
    ]


def _deliveries(endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    # The payload can be large and the log does not show it.
    deliveries = endpoint.deliveries.defer("payload").order_by("-created_at", "-id")
    return list(deliveries[:DELIVERIES_SHOWN])


def _no_store(response: HttpResponse) -> HttpResponse:
    """The page shows a secret: no browser or proxy may keep it (nor show it again from history)."""
    add_never_cache_headers(response)
    return response


# --- API keys -----------------------------------------------------------------------------------


@manager_required
@require_http_methods(["GET", "POST"])
def api_keys(request: StaffRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST if request.method == "POST" else None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            key, secret = api_key_create(
                name=data["name"], owner=data["owner"], scopes=data["scopes"], actor=request.user
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            context = {
                "nav": "integrations",
                "key": key,
                "secret": secret,
                "scopes": _labels(key.scopes, ApiKey.Scope.choices),
                "jobs_url": f"{settings.SITE_URL}/api/v1/jobs/",
            }
            return _no_store(render(request, "crm/integrations/api_key_created.html", context))
    context = {"nav": "integrations", "form": form, "keys": _keys()}
    return render(request, "crm/integrations/api_keys.html", context)


@manager_required
@require_POST
def api_key_revoke_view(request: StaffRequest, pk: int) -> HttpResponse:
    key = _get_key(pk)
    if key.revoked_at is not None:
        messages.info(request, _("The key “%(name)s” was already revoked.") % {"name": key.name})
    else:
        api_key_revoke(key=key, actor=request.user)
        messages.success(
            request,
            _("The key “%(name)s” is revoked: calls made with it are refused from now on.") % {"name": key.name},
        )
    return redirect("crm:api_keys")


# --- Webhook endpoints --------------------------------------------------------------------------


@manager_required
@require_http_methods(["GET", "POST"])
def webhooks(request: StaffRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint = endpoint_create(
                url=data["url"], event_types=data["event_types"], description=data["description"], actor=request.user
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request, _("Endpoint added. Give its signing secret, below, to the system that receives the events.")
            )
            return redirect("crm:webhook", pk=endpoint.pk)
    context = {"nav": "integrations", "form": form, "endpoints": _endpoints()}
    return render(request, "crm/integrations/webhooks.html", context)


@manager_required
@require_http_methods(["GET", "POST"])
def webhook(request: StaffRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    form = WebhookEndpointForm(request.POST if request.method == "POST" else None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint_update(
                endpoint=endpoint, url=data["url"], event_types=data["event_types"], description=data["description"]
            )
        except DomainError as error:
            form.add_error(None, error.message)
            # The page shows the endpoint as it is stored, not as the refused change left it.
            endpoint.refresh_from_db()
        else:
            messages.success(request, _("Endpoint saved."))
            return redirect("crm:webhook", pk=endpoint.pk)
    context = {
        "nav": "integrations",
        "endpoint": endpoint,
        "events": _labels(endpoint.event_types, WebhookEndpoint.EventType.choices),
        "form": form,
        "deliveries": _deliveries(endpoint),
        "deliveries_shown": DELIVERIES_SHOWN,
        "sendable_again": SENDABLE_AGAIN,
        "overlap_hours": ROTATION_OVERLAP_HOURS,
    }
    return _no_store(render(request, "crm/integrations/webhook.html", context))


@manager_required
@require_POST
def webhook_rotate(request: StaffRequest, pk: int) -> HttpResponse:
    endpoint = endpoint_rotate_secret(endpoint=_get_endpoint(pk), overlap_hours=ROTATION_OVERLAP_HOURS)
    messages.success(
        request,
        _(
            "New signing secret made. For %(hours)s hours deliveries are signed with the old one too: "
            "give the new one to the receiving system before then."
        )
        % {"hours": ROTATION_OVERLAP_HOURS},
    )
    return redirect("crm:webhook", pk=endpoint.pk)


@manager_required
@require_POST
def webhook_active(request: StaffRequest, pk: int) -> HttpResponse:
    endpoint = _get_endpoint(pk)
    form = EndpointActiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to pause the endpoint or to turn it back on."))
        return redirect("crm:webhook", pk=endpoint.pk)
    active: bool = form.cleaned_data["active"]
    try:
        endpoint_set_active(endpoint=endpoint, active=active)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        if active:
            messages.success(request, _("Turned back on: new events are sent to it again."))
        else:
            messages.success(
                request, _("Paused. Events that happen while it is paused are not sent to it, even once it is back on.")
            )
    return redirect("crm:webhook", pk=endpoint.pk)


@manager_required
@require_POST
def webhook_delivery_send_again(request: StaffRequest, pk: int) -> HttpResponse:
    delivery = _get_delivery(pk)
    try:
        delivery_send_again(delivery=delivery)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(event)s (%(id)s) is queued to be sent again, with the same webhook id.")
            % {"event": delivery.get_event_type_display(), "id": delivery.webhook_id},
        )
    return redirect(reverse("crm:webhook", kwargs={"pk": delivery.endpoint_id}) + "#deliveries")


urlpatterns: list[URLPattern] = [
    path("settings/api-keys/", api_keys, name="api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", api_key_revoke_view, name="api_key_revoke"),
    path("settings/webhooks/", webhooks, name="webhooks"),
    path("settings/webhooks/<int:pk>/", webhook, name="webhook"),
    path("settings/webhooks/<int:pk>/rotate/", webhook_rotate, name="webhook_rotate"),
    path("settings/webhooks/<int:pk>/active/", webhook_active, name="webhook_active"),
    path(
        "settings/webhooks/deliveries/<int:pk>/send-again/",
        webhook_delivery_send_again,
        name="webhook_delivery_send_again",
    ),
]
