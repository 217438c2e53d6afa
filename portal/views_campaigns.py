"""A campaign's durable page: the link in every campaign message (``/portal/c/<public_id>/``).

It needs no sign-in (the campaign is the same for everyone who got it, and says nothing about
them) and it never dead-ends: while the campaign runs it shows the campaign; once it has ended it
says so, with what is on now for readers of the same language and a way into the portal, with
status 200. A link that names no campaign customers can read (mistyped, cut in two by a mail
program, or a draft) gets the same friendly page with status 404. Nothing here writes.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import translation
from django.views.decorators.http import require_safe

from crm.access import is_staff, second_factor_redirect
from crm.links import campaign_path
from crm.models import Campaign
from crm.notify_campaigns import campaign_context
from crm.services.campaigns import current_campaigns, public_campaign
from crm.workdays import business_today
from portal.access import SESSION_LANGUAGE_KEY, portal_language


def _language(request: HttpRequest) -> str:
    """The language chosen with the switcher on this browser, else the one the message was written
    in (the link says), else the portal's (the contact's, or what the browser asks for)."""
    known = dict(settings.LANGUAGES)
    for language in (request.session.get(SESSION_LANGUAGE_KEY), request.GET.get("lang")):
        if language in known:
            return str(language)
    return portal_language(request)


def _find(request: HttpRequest, code: str) -> Campaign | None:
    try:
        public_id = uuid.UUID(code)
    except ValueError:
        return None
    campaign = public_campaign(public_id)
    if campaign is None and is_staff(request.user) and second_factor_redirect(request, enrol=True) is None:
        # Staff may open a draft's link from its preview, before anyone else can (past their
        # second factor, as on any staff page).
        campaign = Campaign.objects.filter(public_id=public_id).first()
    return campaign


@require_safe
def campaign_page(request: HttpRequest, code: str) -> HttpResponse:
    language = _language(request)
    with translation.override(language):
        campaign = _find(request, code)
        today = business_today()
        context: dict[str, object] = {"campaign": campaign, "language": language}
        if campaign is not None and not campaign.has_ended(today):
            shown = campaign.language_for(language)
            context.update(campaign_context(campaign, language=shown))
            context.update({"running": True, "shown_language": shown})
        else:
            current = current_campaigns(language=language, today=today, exclude=campaign)
            context["current"] = [
                (campaign_path(other, language=language), other.subject_in(other.language_for(language)))
                for other in current
            ]
            if campaign is not None:
                shown = campaign.language_for(language)
                context.update({"ended_subject": campaign.subject_in(shown), "shown_language": shown})
        status = 200 if campaign is not None else 404
        response = render(request, "portal/campaign.html", context, status=status)
    response.headers["Content-Language"] = language
    return response


urlpatterns: list[URLPattern] = [
    # A string, not <uuid:…>: a mangled link still reaches the friendly page instead of a bare 404.
    path("c/<str:code>/", campaign_page, name="campaign"),
]
