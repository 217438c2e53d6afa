"""Two-factor sign-in: "Your account → Two-factor sign-in" (set it up with an authenticator app,
make new backup codes, turn it off) and "Enter your code", where crm.access sends a staff member
past the password whose session has not given its second factor yet.

Every change is a POST through crm.services.two_factor. The QR code is drawn on the server
(segno, an SVG image of its own, never cached); backup codes are shown once, in the answer to the
POST that made them, and never again.
"""

from __future__ import annotations

import io
import math
from base64 import b32encode
from typing import Any

import segno
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import login as otp_login

from crm.access import (
    StaffRequest,
    is_verified,
    remember_enrolment,
    staff_enrolling,
    staff_signed_in,
    two_factor_required,
)
from crm.errors import DomainError
from crm.forms.two_factor import AppCodeForm, CodeForm
from crm.redirects import local_path
from crm.services import two_factor as services
from crm.services.two_factor import CodeCheck, TwoFactorState


def _next(request: StaffRequest) -> str:
    """Where the person was going (a path on this site), else the dashboard."""
    return local_path(request, request.POST.get("next") or request.GET.get("next")) or reverse("crm:home")


def _security_url(next_url: str, anchor: str = "") -> str:
    return f"{reverse('crm:account_security')}?{urlencode({'next': next_url})}{anchor}"


def _back(request: StaffRequest, problem: str) -> HttpResponseRedirect:
    """Back to the page, saying why nothing changed (it changed since the page was shown)."""
    messages.error(request, problem)
    return HttpResponseRedirect(_security_url(_next(request)))


def _refusal(check: CodeCheck) -> str:
    """Why a code was not taken, for the person who typed it."""
    if check.locked_until is not None:
        seconds = max(1, math.ceil((check.locked_until - timezone.now()).total_seconds()))
        return ngettext(
            "Too many wrong codes: wait %(seconds)d second, then try again.",
            "Too many wrong codes: wait %(seconds)d seconds, then try again.",
            seconds,
        ) % {"seconds": seconds}
    return _("That code is not right. Type the code your app shows now, or one of your backup codes.")


def _grouped(secret: str) -> str:
    """The secret in groups of four, as authenticator apps show and accept it."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _verified(request: StaffRequest, device: Any) -> None:
    """This session has given its second factor (a new session key: a higher privilege, a key
    nobody saw before)."""
    otp_login(request, device)
    request.session.cycle_key()
    remember_enrolment(request, True)


def _backup_codes_page(request: StaffRequest, check: CodeCheck, *, next_url: str, first: bool) -> HttpResponse:
    response = render(
        request,
        "crm/account/backup_codes.html",
        {"nav": "account", "codes": check.backup_codes, "next": next_url, "first": first},
    )
    # Shown once: no copy in the browser's cache or history.
    add_never_cache_headers(response)
    return response


def _security_page(
    request: StaffRequest,
    *,
    state: TwoFactorState | None = None,
    confirm_form: AppCodeForm | None = None,
    codes_form: CodeForm | None = None,
    off_form: CodeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    state = state or services.two_factor_state(request.user)
    next_url = _next(request)
    # A form with errors takes the focus; otherwise the first code box of the page does.
    focus_taken = any(form is not None and form.errors for form in (confirm_form, codes_form, off_form))
    context = {
        "nav": "account",
        "state": state,
        "next": next_url,
        "has_next": local_path(request, request.POST.get("next") or request.GET.get("next")) is not None,
        # Needed before going on (the admin needs it of everyone, when required) ...
        "required": two_factor_required(request.user, admin=next_url.startswith(reverse("admin:index"))),
        # ... and for good (crm.services.two_factor.two_factor_turn_off refuses the same people).
        "may_turn_off": not two_factor_required(request.user),
        "secret": _grouped(b32encode(state.pending.bin_key).decode()) if state.pending else "",
        "confirm_form": confirm_form or AppCodeForm(autofocus=not focus_taken),
        "codes_form": codes_form or CodeForm(prefix="codes", autofocus=False),
        "off_form": off_form or CodeForm(prefix="off", autofocus=False),
    }
    return render(request, "crm/account/security.html", context, status=status)


@staff_enrolling
@require_safe
def account_security(request: StaffRequest) -> HttpResponseBase:
    """Your account → Two-factor sign-in: set it up, or see it is on and change it."""
    state = services.two_factor_state(request.user)
    if state.enrolled and not is_verified(request.user):
        # Set up from another session since this one signed in: its code first.
        remember_enrolment(request, True)
        return HttpResponseRedirect(
            f"{reverse('crm:two_factor_verify')}?{urlencode({'next': request.get_full_path()})}"
        )
    remember_enrolment(request, state.enrolled)
    return _security_page(request, state=state)


@staff_enrolling
@require_POST
def two_factor_start(request: StaffRequest) -> HttpResponseBase:
    """ "Set up two-factor sign-in" (or a new phone): a new app, shown as a QR code."""
    services.totp_enrolment_start(user=request.user)
    return HttpResponseRedirect(_security_url(_next(request), "#set-up"))


@staff_enrolling
@require_safe
def two_factor_qr(request: StaffRequest) -> HttpResponseBase:
    """The QR code of the app being set up: the otpauth:// address an authenticator app reads."""
    device = services.two_factor_state(request.user).pending
    if device is None:
        raise Http404("No authenticator app is being set up")
    svg = io.BytesIO()
    segno.make(device.config_url, error="m").save(
        svg, kind="svg", scale=5, border=4, xmldecl=False, dark="#000", light="#fff", title=_("QR code")
    )
    response = HttpResponse(svg.getvalue(), content_type="image/svg+xml")
    # The secret is in the picture: never kept by the browser or anything between.
    add_never_cache_headers(response)
    return response


@staff_enrolling
@require_POST
def two_factor_confirm(request: StaffRequest) -> HttpResponseBase:
    """The app's first code: two-factor sign-in is on, this session counts as verified, and the
    backup codes are shown (this once)."""
    state = services.two_factor_state(request.user)
    if state.pending is None:
        return _back(request, _("Start setting up two-factor sign-in first."))
    form = AppCodeForm(request.POST)
    if not form.is_valid():
        return _security_page(request, state=state, confirm_form=form, status=400)
    try:
        check = services.totp_enrolment_confirm(user=request.user, code=form.cleaned_data["code"])
    except DomainError as error:
        return _back(request, error.message)
    if not check.accepted:
        form.add_error("code", _refusal(check))
        return _security_page(request, confirm_form=form, status=400)
    _verified(request, check.device)
    return _backup_codes_page(request, check, next_url=_next(request), first=True)


@staff_enrolling
@require_POST
def backup_codes_new(request: StaffRequest) -> HttpResponseBase:
    """ "Make new backup codes", given a current code: the old ones stop working."""
    state = services.two_factor_state(request.user)
    if not state.enrolled:
        return _back(request, _("Two-factor sign-in is off: there are no backup codes to replace."))
    form = CodeForm(request.POST, prefix="codes")
    if not form.is_valid():
        return _security_page(request, state=state, codes_form=form, status=400)
    check = services.backup_codes_replace(user=request.user, code=form.cleaned_data["code"])
    if not check.accepted:
        form.add_error("code", _refusal(check))
        return _security_page(request, codes_form=form, status=400)
    return _backup_codes_page(request, check, next_url=_next(request), first=False)


@staff_enrolling
@require_POST
def two_factor_off(request: StaffRequest) -> HttpResponseBase:
    """ "Turn off two-factor sign-in", given a current code; refused to whom it is required."""
    state = services.two_factor_state(request.user)
    if not state.enrolled:
        return _back(request, _("Two-factor sign-in is already off."))
    form = CodeForm(request.POST, prefix="off")
    if not form.is_valid():
        return _security_page(request, state=state, off_form=form, status=400)
    try:
        check = services.two_factor_turn_off(user=request.user, code=form.cleaned_data["code"])
    except DomainError as error:
        return _back(request, error.message)
    if not check.accepted:
        form.add_error("code", _refusal(check))
        return _security_page(request, off_form=form, status=400)
    remember_enrolment(request, False)
    messages.success(request, _("Two-factor sign-in is off: your password alone signs you in."))
    return HttpResponseRedirect(_security_url(_next(request)))


@staff_signed_in
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: StaffRequest) -> HttpResponseBase:
    """Enter your code: the second step of signing in, once a session, back to the page asked for."""
    next_url = _next(request)
    if is_verified(request.user):
        return HttpResponseRedirect(next_url)
    if not services.two_factor_state(request.user).enrolled:
        # Turned off since this session signed in: nothing to ask (a staff page sends them on to
        # set it up if their role needs it).
        remember_enrolment(request, False)
        return HttpResponseRedirect(next_url)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        check = services.second_factor_verify(user=request.user, code=form.cleaned_data["code"])
        if check.accepted:
            _verified(request, check.device)
            if check.used_backup_code:
                left = check.device.token_set.count()
                messages.warning(
                    request,
                    ngettext(
                        "You signed in with a backup code, which now no longer works: %(left)d is left. "
                        "Make new ones from Your account → Two-factor sign-in.",
                        "You signed in with a backup code, which now no longer works: %(left)d are left. "
                        "Make new ones from Your account → Two-factor sign-in.",
                        left,
                    )
                    % {"left": left},
                )
            return HttpResponseRedirect(next_url)
        form.add_error("code", _refusal(check))
    return render(
        request,
        "crm/account/verify.html",
        {"form": form, "next": next_url},
        status=400 if request.method == "POST" else 200,
    )


urlpatterns: list[URLPattern] = [
    path("account/security/", account_security, name="account_security"),
    path("account/security/two-factor/start/", two_factor_start, name="two_factor_start"),
    path("account/security/two-factor/qr.svg", two_factor_qr, name="two_factor_qr"),
    path("account/security/two-factor/confirm/", two_factor_confirm, name="two_factor_confirm"),
    path("account/security/two-factor/off/", two_factor_off, name="two_factor_off"),
    path("account/security/backup-codes/", backup_codes_new, name="backup_codes_new"),
    path("account/two-factor/verify/", two_factor_verify, name="two_factor_verify"),
]
