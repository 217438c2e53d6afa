"""The site's error pages: branded, translated, and each with a way on — "My jobs" under
/portal/, the staff home elsewhere (the templates decide, from the path). A portal error page is in
the portal's look and language: a view's Http404 leaves its in_portal_language override before
Django renders the page, so the language is chosen again here. The CSRF failure page is Django's
own view over 403_csrf.html."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers

from crm.access import is_portal_page
from portal.access import portal_language

logger = logging.getLogger(__name__)


def _error_page(request: HttpRequest, template: str, status: int) -> HttpResponse:
    if not is_portal_page(request):
        return render(request, template, status=status)
    language = portal_language(request)
    with translation.override(language):
        response = render(request, template, {"error_base": "portal/base.html", "portal_layout": True}, status=status)
    response.headers["Content-Language"] = language
    # The portal's header may name the signed-in contact's pages: never cached, like every portal page.
    add_never_cache_headers(response)
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, "404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500.html from a plain context: no request, no context processors, no query — whatever broke
    (the database included) must not break this page too."""
    on_portal = is_portal_page(request)
    language = translation.get_language() or settings.LANGUAGE_CODE
    if on_portal:
        try:
            language = portal_language(request)
        except Exception:  # a session store that is down: the page still comes, in the browser's language
            logger.warning("Portal language unknown for the error page", exc_info=True)
    context = {
        "company_name": settings.COMPANY_NAME,
        "on_portal": on_portal,
        "home_url": reverse("portal:home") if on_portal else "/",
    }
    with translation.override(language):
        response = HttpResponseServerError(loader.get_template("500.html").render(context))
    response.headers["Content-Language"] = language
    return response
