"""Who may see what on the portal.

A contact never has a password. Every message carries a link with a signed token bound to that
contact (Django's signing, so nothing is stored and nothing can be forged without SECRET_KEY).
Opening it starts a portal session that is separate from staff sign-in. Expired links do not
dead-end: they open a page that emails a fresh one.
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import salted_hmac

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpRequest, HttpResponse

    from crm.models import Contact, Job

LINK_SALT = "portal.link"
CALENDAR_SALT = "portal.calendar"
UNSUBSCRIBE_SALT = "portal.unsubscribe"
SESSION_KEY = "portal_contact_id"


def link_max_age() -> timedelta:
    return timedelta(days=settings.PORTAL_LINK_MAX_AGE_DAYS)


def email_fingerprint(email: str) -> str:
    """Binds a link to the address it was sent to without putting the address in the URL."""
    return salted_hmac("portal.link.email", email.strip().lower()).hexdigest()[:16]


def _contact_payload(contact: Contact) -> dict[str, Any]:
    # A link sent to an old address stops working when the address changes.
    return {"c": contact.pk, "e": email_fingerprint(contact.email)}


def make_link_token(contact: Contact) -> str:
    return signing.dumps(_contact_payload(contact), salt=LINK_SALT, compress=True)


def read_link_token(token: str) -> dict[str, Any]:
    """The signed payload; raises signing.SignatureExpired or signing.BadSignature."""
    return signing.loads(token, salt=LINK_SALT, max_age=link_max_age())


def make_calendar_token(contact: Contact) -> str:
    return signing.dumps({"c": contact.pk}, salt=CALENDAR_SALT, compress=True)


def make_unsubscribe_token(contact: Contact) -> str:
    # Never expires: an opt-out link in an old email must keep working.
    return signing.dumps({"c": contact.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> dict[str, Any]:
    return signing.loads(token, salt=UNSUBSCRIBE_SALT)


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def portal_url(contact: Contact, job: Job | None = None) -> str:
    """The link every message to ``contact`` carries: it signs them in and opens ``job``."""
    url = reverse("portal:enter", args=[make_link_token(contact)])
    if job is not None:
        url += "?" + urlencode({"job": str(job.public_id)})
    return absolute(url)


def unsubscribe_url(contact: Contact) -> str:
    return absolute(reverse("portal:unsubscribe", args=[make_unsubscribe_token(contact)]))


def contact_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Portal views need a signed-in contact; everything they read starts from ``request.contact``."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from django.shortcuts import redirect

        from crm.models import Contact

        contact_id = request.session.get(SESSION_KEY)
        contact = Contact.objects.select_related("customer").filter(pk=contact_id).first() if contact_id else None
        if contact is None:
            return redirect("portal:signed_out")
        request.contact = contact  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
