"""Staff sign-in, throttled (django-axes; settings.py, "Sign-in throttling"): the page axes answers
while sign-in is paused (AXES_LOCKOUT_CALLABLE), the client address it counts attempts against
(AXES_CLIENT_IP_CALLABLE), and the two password views sign-in needs more of than Django's: the reset
form, rate-limited by the address typed and by client address, and the new password, which lifts
that account's pause (the emailed link proves the account is theirs)."""

from __future__ import annotations

import logging
from typing import Any

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.contrib.auth.views import (
    PasswordChangeDoneView,
    PasswordChangeView,
    PasswordResetConfirmView,
    PasswordResetView,
)
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from crm import ratelimit
from crm.access import staff_required
from crm.ratelimit import client_ip

logger = logging.getLogger(__name__)

# (requests, seconds): reset emails asked for one address, and reset requests from one client
# address, in a fixed window. Both count every request, known address or not.
PASSWORD_RESETS_PER_ADDRESS = (3, 3600)
PASSWORD_RESETS_PER_IP = (20, 3600)


def sign_in_paused(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """What every sign-in attempt gets while sign-in is paused (AXES_LOCKOUT_CALLABLE), on the staff
    and the admin sign-in page alike: the same words whether the username exists or not (it is
    never shown), how long the pause lasts and how to get in sooner."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds()) // 60
    response = render(request, "registration/sign_in_paused.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    add_never_cache_headers(response)
    return response


class StaffPasswordResetView(PasswordResetView):
    """Django's reset form, which answers the same whether an account uses the address or not, and
    sends nothing past PASSWORD_RESETS_PER_ADDRESS requests for one address or PASSWORD_RESETS_PER_IP
    from one client address: the same "too many requests, wait" page instead (429), whatever the
    address, so the limit tells nothing about accounts either."""

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        (per_address, address_window), (per_ip, ip_window) = PASSWORD_RESETS_PER_ADDRESS, PASSWORD_RESETS_PER_IP
        # Both counters move on every request: many addresses from one place are held back as
        # surely as one address asked for many times.
        address_ok = ratelimit.allow(
            "password-reset-address", form.cleaned_data["email"], limit=per_address, window=address_window
        )
        ip_ok = ratelimit.allow(
            "password-reset-ip", client_ip(self.request) or "unknown", limit=per_ip, window=ip_window
        )
        if not (address_ok and ip_ok):
            logger.info("Password reset request held back by the rate limit")
            window = max(address_window, ip_window)
            response = render(
                self.request, "registration/password_reset_paused.html", {"minutes": window // 60}, status=429
            )
            response["Retry-After"] = str(window)
            return response
        return super().form_valid(form)


class StaffPasswordResetConfirmView(PasswordResetConfirmView):
    """Django's "choose a new password" from the emailed link; saving it also clears the failed
    sign-ins of that username, so a paused account can sign in at once with the new password, as
    the paused page says."""

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        axes_reset(username=form.user.get_username())
        return response


# Changing the password ends the person's other sessions: a staff page like any other, so a
# session past the password only (two-factor sign-in set up, its code not given) cannot.
password_change = staff_required(PasswordChangeView.as_view())
password_change_done = staff_required(PasswordChangeDoneView.as_view())
