"""Campaigns: list, write (create and edit a draft), see the audience, preview per language, send,
follow the sending.

Every view requires staff; any staff member may see and send any campaign (customers are the
team's). Writes go through crm.services.campaigns; the sending runs as a django-q2 task and its
page polls a progress fragment, like the CSV import.
"""

from __future__ import annotations

import re
from typing import Any

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm.access import StaffRequest, staff_required
from crm.errors import DomainError
from crm.forms.campaigns import CampaignForm
from crm.models import Campaign
from crm.services.campaigns import (
    audience,
    campaign_create,
    campaign_send_resume,
    campaign_send_start,
    campaign_update,
    is_stalled,
    preview_drafts,
    texts,
)

CAMPAIGNS_PER_PAGE = 50
# htmx stops polling on this status (https://htmx.org/attributes/hx-trigger/, "every").
STOP_POLLING = 286
# The preview shows the email in a sandboxed srcdoc frame, which inherits its page's
# Content-Security-Policy, and an email is styled with style attributes (as mail clients need).
# So the preview page, and only it, allows style attributes: no <style>, no script, nothing else.
EMAIL_PREVIEW_POLICY = {"style-src-attr": [UNSAFE_INLINE]}


def _get_campaign(public_id: Any) -> Campaign:
    """The one way a staff view finds a campaign (by its public id, never its pk)."""
    return get_object_or_404(Campaign.objects.select_related("pipeline", "created_by", "sent_by"), public_id=public_id)


def _languages(campaign: Campaign) -> list[tuple[str, str]]:
    """The languages the campaign goes out in: its language, or every one."""
    return [
        (code, str(name)) for code, name in settings.LANGUAGES if not campaign.language or code == campaign.language
    ]


def _form_errors(form: CampaignForm, error: ValidationError) -> None:
    """Put a service's ValidationError next to the fields it names (others above the form)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _progress_context(campaign: Campaign) -> dict[str, Any]:
    return {"campaign": campaign, "stalled": is_stalled(campaign), "cap_days": settings.NON_ESSENTIAL_CAP_DAYS}


@staff_required
@require_safe
def campaign_list(request: StaffRequest) -> HttpResponse:
    campaigns = Campaign.objects.select_related("created_by").order_by("-created_at", "-id")
    page = Paginator(campaigns, CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"nav": "campaigns", "page": page, "cap_days": settings.NON_ESSENTIAL_CAP_DAYS}
    return render(request, "crm/campaigns/list.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def campaign_new(request: StaffRequest) -> HttpResponse:
    form = CampaignForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_create(details=form.details, actor=request.user)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, _("Draft saved. Check the audience and the preview, then send it."))
            return redirect(campaign)
    return render(request, "crm/campaigns/form.html", {"nav": "campaigns", "form": form, "campaign": None})


@staff_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: StaffRequest, public_id: Any) -> HttpResponse:
    campaign = _get_campaign(public_id)
    if campaign.status != Campaign.Status.DRAFT:
        messages.info(request, _("This campaign has been sent: it can no longer be changed."))
        return redirect(campaign)
    form = CampaignForm(request.POST if request.method == "POST" else None, instance=campaign)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_update(campaign=_get_campaign(public_id), details=form.details)
        except ValidationError as error:
            _form_errors(form, error)
        except DomainError as error:
            messages.error(request, error.message)
            return redirect(campaign)
        else:
            messages.success(request, _("Draft saved."))
            return redirect(campaign)
    return render(request, "crm/campaigns/form.html", {"nav": "campaigns", "form": form, "campaign": campaign})


@staff_required
@require_safe
def campaign_detail(request: StaffRequest, public_id: Any) -> HttpResponse:
    campaign = _get_campaign(public_id)
    context: dict[str, Any] = {
        "nav": "campaigns",
        "campaign": campaign,
        "languages": _languages(campaign),
        "cap_days": settings.NON_ESSENTIAL_CAP_DAYS,
    }
    if campaign.status == Campaign.Status.DRAFT:
        context["audience"] = audience(campaign)
        context["texts"] = texts(campaign)
    else:
        context.update(_progress_context(campaign))
    return render(request, "crm/campaigns/detail.html", context)


@csp_update(EMAIL_PREVIEW_POLICY)
@csp_update(EMAIL_PREVIEW_POLICY, REPORT_ONLY=True)  # type: ignore[arg-type]  # typed for views without URL arguments
@staff_required
@require_safe
def campaign_preview(request: StaffRequest, public_id: Any, language: str) -> HttpResponse:
    campaign = _get_campaign(public_id)
    languages = _languages(campaign)
    if language not in dict(languages):
        raise Http404("The campaign does not go out in this language")
    contact, drafts = preview_drafts(campaign, language=language)
    context = {
        "nav": "campaigns",
        "campaign": campaign,
        "languages": languages,
        "language": language,
        "language_name": dict(languages)[language],
        "contact": contact,
        "email": drafts[0],
        "sms": drafts[1],
        "written_in": dict(settings.LANGUAGES)[drafts[0].language],
    }
    return render(request, "crm/campaigns/preview.html", context)


@staff_required
@require_POST
def campaign_send(request: StaffRequest, public_id: Any) -> HttpResponse:
    campaign = _get_campaign(public_id)
    confirmed = request.POST.get("texts_confirmed", "")
    try:
        campaign_send_start(
            campaign=campaign,
            actor=request.user,
            texts_confirmed=int(confirmed) if re.fullmatch(r"[0-9]{1,9}", confirmed) else None,
        )
    except DomainError as error:
        messages.error(request, error.message)
    return redirect(campaign)


@staff_required
@require_POST
def campaign_resume(request: StaffRequest, public_id: Any) -> HttpResponse:
    campaign = campaign_send_resume(campaign=_get_campaign(public_id))
    return redirect(campaign)


@staff_required
@require_safe
def campaign_progress(request: StaffRequest, public_id: Any) -> HttpResponse:
    """The progress fragment, polled every second by the page; 286 once sent stops the polling."""
    campaign = _get_campaign(public_id)
    response = render(request, "crm/campaigns/_progress.html", _progress_context(campaign))
    if campaign.status != Campaign.Status.SENDING:
        response.status_code = STOP_POLLING
    return response


urlpatterns: list[URLPattern] = [
    path("campaigns/", campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_new, name="campaign_new"),
    path("campaigns/<uuid:public_id>/", campaign_detail, name="campaign"),
    path("campaigns/<uuid:public_id>/edit/", campaign_edit, name="campaign_edit"),
    path("campaigns/<uuid:public_id>/preview/<str:language>/", campaign_preview, name="campaign_preview"),
    path("campaigns/<uuid:public_id>/send/", campaign_send, name="campaign_send"),
    path("campaigns/<uuid:public_id>/resume/", campaign_resume, name="campaign_resume"),
    path("campaigns/<uuid:public_id>/progress/", campaign_progress, name="campaign_progress"),
]
