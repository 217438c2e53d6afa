"""The portal ticket (portal.access): issued again with every response that leaves the session's
portal keys other than the ticket this browser holds, removed when no contact is signed in.

It sits outside Django's SessionMiddleware, so it sees the session as saved, under its final key
(a sign-in or a staff sign-in in the same browser gives the session a new one). A request that
never read the session (a page kept whole, the unchanged poll) changed nothing in it: its ticket
stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from portal.access import TICKET_COOKIE, make_ticket, read_ticket, wanted_ticket


class PortalTicketMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or not session.accessed:
            return response
        held = request.COOKIES.get(TICKET_COOKIE)
        wanted = wanted_ticket(session)
        if wanted is None:
            if held is not None:
                response.delete_cookie(
                    TICKET_COOKIE,
                    path=settings.SESSION_COOKIE_PATH,
                    domain=settings.SESSION_COOKIE_DOMAIN,
                    samesite=settings.SESSION_COOKIE_SAMESITE,
                )
        elif read_ticket(held) != wanted:  # an expired one is issued again too
            response.set_cookie(
                TICKET_COOKIE,
                make_ticket(wanted),
                max_age=None if settings.SESSION_EXPIRE_AT_BROWSER_CLOSE else settings.SESSION_COOKIE_AGE,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
        return response
