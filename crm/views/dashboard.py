"""Home: what needs attention now, most urgent first, each row with its next action."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import selectors
from crm.access import StaffRequest, is_manager, staff_required
from crm.errors import DomainError
from crm.ids import id_from_input
from crm.models import Message
from crm.services import alerts
from crm.services import messages as message_services
from crm.workdays import business_today


@staff_required
@require_GET
def home(request: StaffRequest) -> HttpResponse:
    scope = "team" if request.GET.get("scope") == "team" else "mine"
    sections = selectors.attention(request.user, scope=scope)
    counts = selectors.attention_counts(request.user)
    return render(
        request,
        "crm/home.html",
        {"nav": "home", "sections": sections, "scope": scope, "attention_counts": counts, "today": business_today()},
    )


def _get_alert_for_user(request: StaffRequest, message_id: int) -> Message:
    """A staff alert its recipient, or a manager, may act on; anything else is a 404."""
    pk = id_from_input(message_id, Message)
    if pk is None:
        raise Http404
    alert = Message.objects.filter(pk=pk, kind=Message.Kind.STAFF_ALERT).select_related("staff").first()
    if alert is None or not (alert.staff_id == request.user.pk or is_manager(request.user)):
        raise Http404
    return alert


def _on_alert(request: StaffRequest, message_id: int, service: Callable[..., Message], done: str) -> HttpResponse:
    try:
        service(message=_get_alert_for_user(request, message_id), actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect("crm:home")


@staff_required
@require_POST
def alert_send_again(request: StaffRequest, message_id: int) -> HttpResponse:
    return _on_alert(request, message_id, alerts.alert_send_again, _("Sending again."))


@staff_required
@require_POST
def alert_handled(request: StaffRequest, message_id: int) -> HttpResponse:
    return _on_alert(request, message_id, message_services.message_mark_handled, _("Marked as dealt with."))


urlpatterns = [
    path("", home, name="home"),
    path("alerts/<int:message_id>/send-again/", alert_send_again, name="alert_send_again"),
    path("alerts/<int:message_id>/handled/", alert_handled, name="alert_handled"),
]
