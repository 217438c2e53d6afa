"""Who may use the staff CRM: active staff users. Managers also reassign owners and see the team."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, cast

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from crm.workdays import business_zone

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

MANAGERS_GROUP = "Managers"

P = ParamSpec("P")


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware (installed for every request) leaves it."""

    htmx: HtmxDetails


class StaffRequest(HtmxHttpRequest):
    """The request a view behind staff_required receives: a signed-in, active staff user."""

    user: User


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


def staff_required(
    view: Callable[Concatenate[StaffRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Anonymous visitors (and a customer's portal session) go to the staff sign-in page; a signed-in
    user who is not staff is refused."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not is_staff(request.user):
            raise PermissionDenied
        # Staff read times where the team works, whatever the server's zone.
        with timezone.override(business_zone()):
            # What StaffRequest promises is what was just checked: a signed-in (so a User) staff
            # member; HtmxMiddleware has set request.htmx.
            return view(cast(StaffRequest, request), *args, **kwargs)

    return wrapper


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
