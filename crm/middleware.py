"""Staff sessions: they end after STAFF_SESSION_IDLE_HOURS without a request (a laptop left open
in a van), and every staff page answers ``Cache-Control: no-store`` unless it says otherwise (a
shared computer's back button or disk cache shows no customer's data). Portal sessions keep their
own lifetime: this only looks at a signed-in staff user, and never under the portal's address
(a portal page kept whole, or the live poll, answers without reading the session at all). When it
notes the visit (once in SEEN_GRANULARITY), a session that began before its person set up
two-factor sign-in learns of it, and asks for the code from then on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect
from django_otp import user_has_device

from crm.access import is_enrolled, is_portal_page, is_staff, remember_enrolment

# When the staff member was last seen, in the session (a Unix time).
SEEN_KEY = "staff_seen_at"
# Seen again within this many seconds: the session is not written again (at most one write in
# five minutes; the idle time is counted to within that).
SEEN_GRANULARITY = 300


@receiver(user_logged_in, dispatch_uid="crm.staff_seen")
def _seen_at_sign_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Signing in counts as being seen: the first page after it writes nothing more."""
    if request is not None and hasattr(request, "session"):
        request.session[SEEN_KEY] = int(time.time())


class StaffSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        staff = not is_portal_page(request) and is_staff(request.user)
        if staff:
            now = int(time.time())
            seen = request.session.get(SEEN_KEY)
            if isinstance(seen, int) and now - seen > settings.STAFF_SESSION_IDLE_HOURS * 3600:
                # Idle too long: signed out (the whole session ends), and back to this page after
                # signing in again.
                logout(request)
                if request.headers.get("HX-Request") == "true":
                    # An htmx request (django-htmx's middleware runs after this one) loads the
                    # sign-in page whole, not into a fragment.
                    return HttpResponseClientRedirect(
                        redirect_to_login(request.get_full_path(), settings.LOGIN_URL).url
                    )
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not isinstance(seen, int) or now - seen >= SEEN_GRANULARITY:
                request.session[SEEN_KEY] = now
                if not is_enrolled(request):
                    # Two-factor sign-in set up since this session began (from another browser):
                    # this one asks for the code too, within SEEN_GRANULARITY.
                    remember_enrolment(request, user_has_device(request.user))
        response = self.get_response(request)
        if staff and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
