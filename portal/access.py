"""Who may see what on the portal: the portal session and the decorators of its views.

A contact never has a password: every message carries a signed link (crm.links builds and reads
them). Opening it starts a portal session that is separate from staff sign-in: the contact is never
a Django user, and signing out of the portal leaves a staff login in the same browser alone.
Expired links do not dead-end: they open a page that sends a fresh one. Survey and check-in links
never start a portal session, so a forwarded survey email gives nobody the customer's portal.

A session is bound like the link that started it (crm.links.contact_fingerprint: the address and
the contact's link version), so a new address or "reset my links" ends every session of that
contact at their next page, with no query of its own (the contact row is read anyway). Signing out
deletes the session server-side: its cookie, replayed, signs nobody in.

The session remembers, besides the contact, everything the live status poll needs to answer
"nothing changed" with a single query: the customer (every portal query starts from it), the
language and the time zone the pages are shown in.

The ticket: a signed cookie beside the session cookie that carries a copy of those keys and a
hash of the session key it was issued with (portal.middleware issues it again whenever a response
leaves the session's portal keys other than the ticket says, and removes it on sign-out). A page
kept whole and the unchanged live poll read who is signed in from it, without loading the session
from the cache: the one query they make checks that the session still exists server-side
(``ticket_binding``'s session key) and that the contact's address and link version are still the
ones it was bound to. Anything not as it should be — no ticket, a bad signature, a ticket of
another session — and the page reads the session as every other page does.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from crm.access import HtmxHttpRequest
from crm.links import contact_fingerprint, signed_out_url
from crm.models import Contact

P = ParamSpec("P")
R = TypeVar("R", bound=HttpRequest)


class PortalRequest(HtmxHttpRequest):
    """The request a view behind ``contact_required`` receives."""

    # The signed-in contact, with their customer, checked against the session before the view runs.
    contact: Contact


SESSION_KEY = "portal_contact_id"
SESSION_CUSTOMER_KEY = "portal_customer_id"
# The address the link was sent to and the contact's link version, as a fingerprint: a session
# ends when the address changes or the links are reset.
SESSION_FINGERPRINT_KEY = "portal_email_fingerprint"
# The contact's language when they signed in, and the one they chose with the switcher (wins).
SESSION_CONTACT_LANGUAGE_KEY = "portal_contact_language"
SESSION_LANGUAGE_KEY = "portal_language"
SESSION_TIME_ZONE_KEY = "portal_time_zone"
PORTAL_SESSION_KEYS = (
    SESSION_KEY,
    SESSION_CUSTOMER_KEY,
    SESSION_FINGERPRINT_KEY,
    SESSION_CONTACT_LANGUAGE_KEY,
    SESSION_TIME_ZONE_KEY,
)
# What the ticket copies from the session: the keys above and the language chosen on this browser.
TICKET_KEYS = (*PORTAL_SESSION_KEYS, SESSION_LANGUAGE_KEY)
TICKET_COOKIE = "portal_ticket"
TICKET_SALT = "portal.access.ticket"
# In the ticket: the hash of the session key it was issued with.
TICKET_SESSION_KEY = "session"


# --- The session --------------------------------------------------------------------------------


def sign_in(request: HttpRequest, contact: Contact) -> None:
    """Start (or renew) the portal session for ``contact``.

    The session key changes (no fixation). Another contact's portal keys are dropped first, but a
    staff login and a language chosen on this browser stay.
    """
    if request.session.get(SESSION_KEY) not in (None, contact.pk):
        for key in PORTAL_SESSION_KEYS:
            request.session.pop(key, None)
    request.session.cycle_key()
    request.session[SESSION_KEY] = contact.pk
    request.session[SESSION_CUSTOMER_KEY] = contact.customer_id
    request.session[SESSION_FINGERPRINT_KEY] = contact_fingerprint(contact)
    remember_preferences(request, contact)


def remember_preferences(request: HttpRequest, contact: Contact) -> None:
    """Keep the contact's language and time zone in the session (the poll reads them from there)."""
    request.session[SESSION_CONTACT_LANGUAGE_KEY] = contact.language
    request.session[SESSION_TIME_ZONE_KEY] = contact.time_zone


def sign_out(request: HttpRequest) -> None:
    """End the portal session: its keys go, and the session is stored afresh under a new key —
    cycle_key deletes the old one from the session store (cache and database), so the cookie the
    browser had signs nobody in if it is replayed. A staff login in the same browser stays."""
    for key in PORTAL_SESSION_KEYS:
        request.session.pop(key, None)
    request.session.cycle_key()


def signed_in_as(request: HttpRequest, contact: Contact) -> bool:
    """Whether this browser's portal session is ``contact``'s and still bound to them as they are
    (not ended by a new address or a reset): from the session and the row, no query."""
    return request.session.get(SESSION_KEY) == contact.pk and request.session.get(
        SESSION_FINGERPRINT_KEY
    ) == contact_fingerprint(contact)


def session_contact_id(request: HttpRequest) -> int | None:
    """The signed-in contact, from the session alone (no query; ``contact_required`` still checks
    the session against the contact before a page shows anything)."""
    contact_id = request.session.get(SESSION_KEY)
    return contact_id if isinstance(contact_id, int) else None


def ticket_binding(request: HttpRequest) -> tuple[int, int, str, str] | None:
    """The signed-in contact, their customer, the fingerprint the session is bound to and the
    session's key, from the ticket alone (no query, no session read): whoever uses them checks, in
    their one query, that the session still exists and that the fingerprint is the contact's."""
    ticket = _ticket(request)
    contact_id = ticket.get(SESSION_KEY)
    customer_id = ticket.get(SESSION_CUSTOMER_KEY)
    fingerprint = ticket.get(SESSION_FINGERPRINT_KEY)
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    if isinstance(contact_id, int) and isinstance(customer_id, int) and isinstance(fingerprint, str):
        return contact_id, customer_id, fingerprint, session_key
    return None


def session_customer_id(request: HttpRequest) -> int | None:
    """The signed-in contact's customer, from the session alone (no query)."""
    if request.session.get(SESSION_KEY) is None:
        return None
    customer_id = request.session.get(SESSION_CUSTOMER_KEY)
    return customer_id if isinstance(customer_id, int) else None


# --- The ticket ---------------------------------------------------------------------------------


def _session_key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def read_ticket(value: str | None) -> dict[str, Any] | None:
    """The keys a ticket carries, when its signature holds and it is not older than a session
    lives; None otherwise."""
    if not value:
        return None
    try:
        data = signing.loads(value, salt=TICKET_SALT, max_age=settings.SESSION_COOKIE_AGE)
    except signing.BadSignature:  # expired ones too
        return None
    return data if isinstance(data, dict) else None


def wanted_ticket(session: Any) -> dict[str, Any] | None:
    """What the ticket of ``session`` (saved: it has its key) should carry; None when no contact
    is signed in with it."""
    if session.session_key is None or not isinstance(session.get(SESSION_KEY), int):
        return None
    data = {key: session[key] for key in TICKET_KEYS if key in session}
    data[TICKET_SESSION_KEY] = _session_key_hash(session.session_key)
    return data


def make_ticket(data: dict[str, Any]) -> str:
    return signing.dumps(data, salt=TICKET_SALT)


def _ticket(request: HttpRequest) -> dict[str, Any]:
    """This request's ticket, when it was issued with the session cookie it came with, else an
    empty one (read once per request)."""
    found: dict[str, Any] | None = getattr(request, "_portal_ticket", None)
    if found is None:
        found = read_ticket(request.COOKIES.get(TICKET_COOKIE)) or {}
        issued_with = found.get(TICKET_SESSION_KEY)
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
        if not (
            isinstance(issued_with, str)
            and session_key
            and hmac.compare_digest(issued_with, _session_key_hash(session_key))
        ):
            found = {}
        request._portal_ticket = found  # type: ignore[attr-defined]
    return found


def portal_state(request: HttpRequest) -> Mapping[str, Any]:
    """The portal keys of this browser's session: from its ticket when it has one and nothing in
    this request has read the session yet (no session read), else from the session (which this
    request may have just changed)."""
    session = request.session
    if not session.accessed:
        ticket = _ticket(request)
        if ticket:
            return ticket
    return session


def choose_language(request: HttpRequest, language: str) -> None:
    request.session[SESSION_LANGUAGE_KEY] = language


def portal_language(request: HttpRequest) -> str:
    """The language of portal pages: the one chosen with the switcher, else the contact's, else
    what the browser asked for (LocaleMiddleware)."""
    known = {code for code, _name in settings.LANGUAGES}
    state = portal_state(request)
    for key in (SESSION_LANGUAGE_KEY, SESSION_CONTACT_LANGUAGE_KEY):
        language = state.get(key)
        if language in known:
            return language
    return translation.get_language() or settings.LANGUAGE_CODE


def portal_time_zone(request: HttpRequest) -> zoneinfo.ZoneInfo:
    name = portal_state(request).get(SESSION_TIME_ZONE_KEY) or settings.DEFAULT_CONTACT_TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DEFAULT_CONTACT_TIME_ZONE)


def in_portal_language(
    view: Callable[Concatenate[R, P], HttpResponseBase],
) -> Callable[Concatenate[R, P], HttpResponseBase]:
    """Render the view in the portal's language and the contact's time zone.

    ``override`` rather than ``activate``: nothing leaks into the next request on this thread.
    """

    @wraps(view)
    def wrapper(request: R, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        language = portal_language(request)
        with translation.override(language), timezone.override(portal_time_zone(request)):
            response = view(request, *args, **kwargs)
        response.headers["Content-Language"] = language
        return response

    return wrapper


def contact_required(
    view: Callable[Concatenate[PortalRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Portal views need a signed-in contact; everything they read starts from ``request.contact``.

    Without one, the visitor is sent to the page that offers a fresh link (with the job they
    wanted). A session whose contact is gone, changed address, had their links reset or moved to
    another customer ends.
    Pages carry personal data: never cached, unless the view says otherwise (the live poll).
    """

    @in_portal_language
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        contact_id = request.session.get(SESSION_KEY)
        contact = Contact.objects.select_related("customer").filter(pk=contact_id).first() if contact_id else None
        if contact is not None and (
            contact.customer_id != request.session.get(SESSION_CUSTOMER_KEY)
            or contact_fingerprint(contact) != request.session.get(SESSION_FINGERPRINT_KEY)
        ):
            sign_out(request)
            contact = None
        if contact is None:
            public_id = kwargs.get("public_id")
            url = signed_out_url(job=public_id if isinstance(public_id, uuid.UUID) else None)
            # An htmx request (the live poll) loads the page whole, not into the block it asked for.
            return HttpResponseClientRedirect(url) if request.headers.get("HX-Request") == "true" else redirect(url)
        # What PortalRequest promises is what was just checked; HtmxMiddleware has set request.htmx.
        portal_request = cast(PortalRequest, request)
        portal_request.contact = contact
        response = view(portal_request, *args, **kwargs)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response

    return wrapper
