"""Who may use the staff CRM: active staff users, with their second factor once they have one.
Managers also reassign owners and see the team.

Two-factor sign-in (django-otp; set up from "Your account", crm/views/two_factor.py): a staff
member who has a confirmed device gives a code after the password, once per session, before any
staff page or the admin. With STAFF_2FA_REQUIRED, managers and anyone with the admin (superusers,
and staff on their way to /admin/) set it up before anything else, and the admin accepts only a
verified session. Whether the person has set it up is remembered in the session when they sign in
(and changed by the pages that turn it on or off), so a staff page spends no query on it; a
session without the mark was opened before two-factor sign-in existed, when nobody had a device.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect
from django_otp import user_has_device

from crm.redirects import local_path
from crm.workdays import business_zone

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

MANAGERS_GROUP = "Managers"
# In the session: whether its person had set up two-factor sign-in when they signed in.
ENROLLED_SESSION_KEY = "two_factor_enrolled"

P = ParamSpec("P")


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware (installed for every request) leaves it."""

    htmx: HtmxDetails


class StaffRequest(HtmxHttpRequest):
    """The request a view behind staff_required receives: a signed-in, active staff user."""

    user: User


@cache
def _portal_prefix() -> str:
    return reverse("portal:home")


def is_portal_page(request: HttpRequest | None) -> bool:
    """Whether ``request`` is for a page under the portal: staff sessions are never looked at
    there (crm.middleware), and an error page offers "My jobs" in the portal's look (elsewhere,
    the staff home)."""
    return request is not None and request.path.startswith(_portal_prefix())


def is_staff(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def is_manager(user: Any) -> bool:
    if not is_staff(user):
        return False
    if user.is_superuser:
        return True
    # Cached on the user object: templates and views ask several times per request.
    if not hasattr(user, "_is_manager"):
        user._is_manager = user.groups.filter(name=MANAGERS_GROUP).exists()
    return bool(user._is_manager)


# --- Two-factor sign-in -------------------------------------------------------------------------


def is_verified(user: Any) -> bool:
    """This session gave its second factor (django-otp's middleware names the device that took it)."""
    return getattr(user, "otp_device", None) is not None


def two_factor_required(user: Any, *, admin: bool = False) -> bool:
    """STAFF_2FA_REQUIRED applies to this person: a manager, a superuser, or (``admin``) a staff
    member using the admin site."""
    if not settings.STAFF_2FA_REQUIRED:
        return False
    return admin or bool(user.is_superuser) or is_manager(user)


def is_enrolled(request: HttpRequest) -> bool:
    """The session's person has set up two-factor sign-in (as the session remembers it)."""
    return request.session.get(ENROLLED_SESSION_KEY) is True


def remember_enrolment(request: HttpRequest, enrolled: bool) -> None:
    if request.session.get(ENROLLED_SESSION_KEY) is not enrolled:  # unchanged: the session is not written
        request.session[ENROLLED_SESSION_KEY] = enrolled


def _remember_enrolment_at_sign_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        remember_enrolment(request, user_has_device(user))


# Connected when this module is first imported: the URLconf imports it (every staff view does)
# before any sign-in page can be served.
user_logged_in.connect(_remember_enrolment_at_sign_in, dispatch_uid="crm.access.two_factor")


def _second_factor_page(request: HttpRequest, *, enrol: bool, admin: bool = False) -> str | None:
    """The page a signed-in staff member goes to before the one they asked for: "Enter your code"
    when they have set up two-factor sign-in and this session has not given it; the set-up page
    when they must have it and have not (``enrol``); None: on to their page."""
    if is_verified(request.user):
        return None
    if is_enrolled(request):
        return reverse("crm:two_factor_verify")
    if enrol and two_factor_required(request.user, admin=admin):
        return reverse("crm:account_security")
    return None


def second_factor_redirect(
    request: HttpRequest, *, enrol: bool, admin: bool = False, next_url: str | None = None
) -> HttpResponse | None:
    """The way to _second_factor_page, coming back to ``next_url`` (this page) afterwards; an htmx
    request is told to load it as a whole page rather than swap it into a fragment."""
    page = _second_factor_page(request, enrol=enrol, admin=admin)
    if page is None:
        return None
    target = f"{page}?{urlencode({'next': next_url or request.get_full_path()})}"
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


def _staff_view(
    view: Callable[Concatenate[StaffRequest, P], HttpResponseBase], *, verify: bool, enrol: bool
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not is_staff(request.user):
            raise PermissionDenied
        if verify and (step := second_factor_redirect(request, enrol=enrol)) is not None:
            return step
        # Staff read times where the team works, whatever the server's zone.
        with timezone.override(business_zone()):
            # What StaffRequest promises is what was just checked: a signed-in (so a User) staff
            # member; HtmxMiddleware has set request.htmx.
            return view(cast(StaffRequest, request), *args, **kwargs)

    return wrapper


def staff_required(
    view: Callable[Concatenate[StaffRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Anonymous visitors (and a customer's portal session) go to the staff sign-in page; a signed-in
    user who is not staff is refused; a staff member with two-factor sign-in gives their code first,
    and one who must have it (STAFF_2FA_REQUIRED) sets it up first."""
    return _staff_view(view, verify=True, enrol=True)


def staff_enrolling(
    view: Callable[Concatenate[StaffRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """staff_required for the pages where two-factor sign-in is set up: the code is asked for once
    it is, but nobody is sent away to set it up."""
    return _staff_view(view, verify=True, enrol=False)


def staff_signed_in(
    view: Callable[Concatenate[StaffRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """A staff member past the password, second factor or not: for "Enter your code" only."""
    return _staff_view(view, verify=False, enrol=False)


def manager_required(
    view: Callable[Concatenate[StaffRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    @wraps(view)
    @staff_required
    def wrapper(request: StaffRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not is_manager(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


AdminViewT = TypeVar("AdminViewT", bound=Callable[..., Any])


class TwoFactorAdminSite(AdminSite):
    """The admin with the staff pages' second factor: a session that has not given it has no
    permission, and the admin's sign-in page sends a staff member already past the password to
    "Enter your code" (or to set it up) instead of showing them the password form again."""

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and _second_factor_page(request, enrol=True, admin=True) is None

    def admin_view(self, view: AdminViewT, cacheable: bool = False) -> AdminViewT:
        """Every admin page reads times where the team works, as the staff pages do (the
        server's zone is UTC): a date in a list, a form's date and time fields."""
        guarded = super().admin_view(view, cacheable)

        @wraps(guarded)
        def in_business_time(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            with timezone.override(business_zone()):
                response = guarded(request, *args, **kwargs)
                # A TemplateResponse renders later, outside this block: render it here.
                render = getattr(response, "render", None)
                if callable(render) and not getattr(response, "is_rendered", True):
                    response = render()
                return response

        return cast(AdminViewT, in_business_time)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if is_staff(request.user):
            next_url = local_path(request, request.GET.get("next")) or reverse("admin:index", current_app=self.name)
            if (step := second_factor_redirect(request, enrol=True, admin=True, next_url=next_url)) is not None:
                return step
        return super().login(request, extra_context)


def require_second_factor(site: AdminSite) -> AdminSite:
    """``site`` (the default admin.site, which every ModelAdmin is registered on) as a
    TwoFactorAdminSite: the way django-otp documents for its own OTPAdminSite."""
    site.__class__ = TwoFactorAdminSite
    return site
