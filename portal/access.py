"""Who may see what on the portal.

A contact never has a password. Every message carries a link with a signed token bound to that
contact (Django's signing, so nothing is stored and nothing can be forged without SECRET_KEY).
Opening it starts a portal session that is separate from staff sign-in: the contact is never a
Django user, and signing out of the portal leaves a staff login in the same browser alone.
Expired links do not dead-end: they open a page that sends a fresh one.

Survey and check-in links carry tokens of their own (salts "portal.survey", "portal.checkin"):
they name one job and one contact, never expire (an old email's link still opens), and open that
one page only — they never start a portal session, so a forwarded survey email gives nobody the
customer's portal.

The session remembers, besides the contact, everything the live status poll needs to answer
"nothing changed" with a single query: the customer (every portal query starts from it), the
language and the time zone the pages are shown in.
"""

from __future__ import annotations

import base64
import hmac
import struct
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import date, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import salted_hmac

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpRequest, HttpResponse

    from crm.models import Contact, Job

LINK_SALT = "portal.link"
CALENDAR_SALT = "portal.calendar"
UNSUBSCRIBE_SALT = "portal.unsubscribe"
SURVEY_SALT = "portal.survey"
CHECKIN_SALT = "portal.checkin"

SESSION_KEY = "portal_contact_id"
SESSION_CUSTOMER_KEY = "portal_customer_id"
# The address the link was sent to, as a fingerprint: a session ends when the address changes.
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


# --- Signed links -------------------------------------------------------------------------------


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


def payload_contact_id(payload: dict[str, Any] | None) -> int | None:
    """The contact a verified token names (None if it names none)."""
    contact_id = (payload or {}).get("c")
    return contact_id if isinstance(contact_id, int) else None


def make_calendar_token(contact: Contact) -> str:
    # Never expires: a calendar app subscribes once and keeps fetching the same address.
    return signing.dumps({"c": contact.pk}, salt=CALENDAR_SALT, compress=True)


def read_calendar_token(token: str) -> dict[str, Any]:
    """The signed payload; raises signing.BadSignature."""
    return signing.loads(token, salt=CALENDAR_SALT)


def make_unsubscribe_token(contact: Contact) -> str:
    # Never expires: an opt-out link in an old email must keep working.
    return signing.dumps({"c": contact.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> dict[str, Any]:
    return signing.loads(token, salt=UNSUBSCRIBE_SALT)


def _job_contact_token(job_id: uuid.UUID, contact_id: int, *, salt: str) -> str:
    return signing.dumps({"j": str(job_id), "c": contact_id}, salt=salt, compress=True)


def _read_job_contact_token(token: str, *, salt: str) -> tuple[uuid.UUID, int] | None:
    """The job's public id and the contact a verified token names; None when it does not verify."""
    try:
        payload = signing.loads(token, salt=salt)
    except signing.BadSignature:
        return None
    job_id = parse_public_id(payload.get("j")) if isinstance(payload, dict) else None
    contact_id = payload_contact_id(payload) if isinstance(payload, dict) else None
    if job_id is None or contact_id is None:
        return None
    return job_id, contact_id


def make_survey_token(*, job_id: uuid.UUID, contact_id: int) -> str:
    # Never expires: a survey link in an old email still opens (answered: the thanks page).
    # It opens that survey only; it never signs anyone in to the portal.
    return _job_contact_token(job_id, contact_id, salt=SURVEY_SALT)


def read_survey_token(token: str) -> tuple[uuid.UUID, int] | None:
    return _read_job_contact_token(token, salt=SURVEY_SALT)


def make_checkin_token(*, job_id: uuid.UUID, contact_id: int) -> str:
    # Never expires, and opens that check-in only, like a survey link.
    return _job_contact_token(job_id, contact_id, salt=CHECKIN_SALT)


def read_checkin_token(token: str) -> tuple[uuid.UUID, int] | None:
    return _read_job_contact_token(token, salt=CHECKIN_SALT)


# --- Short sign-in links, for text messages ------------------------------------------------------
#
# An SMS has 320 characters; a signed link (JSON, timestamp, full signature, the job's UUID) takes
# about 175 of them. The short link carries the same facts packed in 15 bytes — the contact, the
# job, the day it was made and the email fingerprint — with a 96-bit HMAC (truncated SHA-256,
# keyed by SECRET_KEY): 36 characters. It expires like the long link, and a changed address ends
# it the same way.

SHORT_SALT = "portal.short"
SHORT_EPOCH = date(2020, 1, 1)
SHORT_MAC_BYTES = 12
_SHORT_LAYOUT = struct.Struct(">BIIH4s")  # version, contact, job (0: none), day, fingerprint
_SHORT_VERSION = 1


@dataclass(frozen=True)
class ShortLink:
    contact_id: int
    job_id: int | None
    fingerprint: bytes


def _short_mac(payload: bytes) -> bytes:
    return salted_hmac(SHORT_SALT, payload, algorithm="sha256").digest()[:SHORT_MAC_BYTES]


def make_short_token(contact: Contact, job: Job | None = None, *, today: date | None = None) -> str:
    day = ((today or timezone.now().date()) - SHORT_EPOCH).days
    payload = _SHORT_LAYOUT.pack(
        _SHORT_VERSION, contact.pk, job.pk if job else 0, day, bytes.fromhex(email_fingerprint(contact.email)[:8])
    )
    return base64.urlsafe_b64encode(payload + _short_mac(payload)).decode().rstrip("=")


def read_short_token(token: str, *, today: date | None = None) -> ShortLink | None:
    """What a short link names, if it is ours and not older than the link lifetime."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    payload, mac = raw[: _SHORT_LAYOUT.size], raw[_SHORT_LAYOUT.size :]
    if len(payload) != _SHORT_LAYOUT.size or not hmac.compare_digest(mac, _short_mac(payload)):
        return None
    version, contact_id, job_id, day, fingerprint = _SHORT_LAYOUT.unpack(payload)
    age = (today or timezone.now().date()) - (SHORT_EPOCH + timedelta(days=day))
    if version != _SHORT_VERSION or not timedelta(0) <= age <= link_max_age():
        return None
    return ShortLink(contact_id=contact_id, job_id=job_id or None, fingerprint=fingerprint)


def short_fingerprint_matches(link: ShortLink, contact: Contact) -> bool:
    return hmac.compare_digest(link.fingerprint, bytes.fromhex(email_fingerprint(contact.email)[:8]))


def short_portal_url(contact: Contact, job: Job | None = None) -> str:
    """The link a text message carries: signs ``contact`` in and opens ``job``, in 36 characters
    (the long link for ids past what it packs)."""
    if contact.pk >= 2**32 or (job is not None and job.pk >= 2**32):
        return portal_url(contact, job)
    return absolute(reverse("portal:short_enter", args=[make_short_token(contact, job)]))


def is_portal_page(request: HttpRequest | None) -> bool:
    """Whether ``request`` is for a page under the portal (an error page then offers "My jobs" in
    the portal's look; elsewhere, the staff home)."""
    return request is not None and request.path.startswith(reverse("portal:home"))


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


def survey_url(job: Job, contact: Contact) -> str:
    return absolute(reverse("portal:survey", args=[make_survey_token(job_id=job.public_id, contact_id=contact.pk)]))


def checkin_url(job: Job, contact: Contact) -> str:
    return absolute(reverse("portal:checkin", args=[make_checkin_token(job_id=job.public_id, contact_id=contact.pk)]))


def calendar_url(contact: Contact) -> str:
    return absolute(reverse("portal:calendar", args=[make_calendar_token(contact)]))


def webcal_url(contact: Contact) -> str:
    """The same feed for "subscribe" buttons: calendar apps open webcal:// addresses themselves."""
    url = calendar_url(contact)
    return "webcal://" + url.split("://", 1)[1]


def parse_public_id(value: str | None) -> uuid.UUID | None:
    """A job's public id from a query string, or None when it is missing or malformed."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def signed_out_url(*, job: uuid.UUID | None = None, reason: str = "") -> str:
    """Where a visitor without a usable session goes; the job they wanted travels along, so the
    fresh link they ask for opens it."""
    query = {key: value for key, value in (("job", str(job) if job else ""), ("reason", reason)) if value}
    url = reverse("portal:signed_out")
    return f"{url}?{urlencode(query)}" if query else url


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
    request.session[SESSION_FINGERPRINT_KEY] = email_fingerprint(contact.email)
    remember_preferences(request, contact)


def remember_preferences(request: HttpRequest, contact: Contact) -> None:
    """Keep the contact's language and time zone in the session (the poll reads them from there)."""
    request.session[SESSION_CONTACT_LANGUAGE_KEY] = contact.language
    request.session[SESSION_TIME_ZONE_KEY] = contact.time_zone


def sign_out(request: HttpRequest) -> None:
    for key in PORTAL_SESSION_KEYS:
        request.session.pop(key, None)
    request.session.cycle_key()


def session_contact_id(request: HttpRequest) -> int | None:
    """The signed-in contact, from the session alone (no query; ``contact_required`` still checks
    the session against the contact before a page shows anything)."""
    contact_id = request.session.get(SESSION_KEY)
    return contact_id if isinstance(contact_id, int) else None


def session_customer_id(request: HttpRequest) -> int | None:
    """The signed-in contact's customer, from the session alone (no query)."""
    if request.session.get(SESSION_KEY) is None:
        return None
    customer_id = request.session.get(SESSION_CUSTOMER_KEY)
    return customer_id if isinstance(customer_id, int) else None


def choose_language(request: HttpRequest, language: str) -> None:
    request.session[SESSION_LANGUAGE_KEY] = language


def portal_language(request: HttpRequest) -> str:
    """The language of portal pages: the one chosen with the switcher, else the contact's, else
    what the browser asked for (LocaleMiddleware)."""
    known = {code for code, _name in settings.LANGUAGES}
    for key in (SESSION_LANGUAGE_KEY, SESSION_CONTACT_LANGUAGE_KEY):
        language = request.session.get(key)
        if language in known:
            return language
    return translation.get_language() or settings.LANGUAGE_CODE


def portal_time_zone(request: HttpRequest) -> zoneinfo.ZoneInfo:
    name = request.session.get(SESSION_TIME_ZONE_KEY) or settings.DEFAULT_CONTACT_TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DEFAULT_CONTACT_TIME_ZONE)


def in_portal_language(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Render the view in the portal's language and the contact's time zone.

    ``override`` rather than ``activate``: nothing leaks into the next request on this thread.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language = portal_language(request)
        with translation.override(language), timezone.override(portal_time_zone(request)):
            response = view(request, *args, **kwargs)
        response.headers["Content-Language"] = language
        return response

    return wrapper


def contact_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Portal views need a signed-in contact; everything they read starts from ``request.contact``.

    Without one, the visitor is sent to the page that offers a fresh link (with the job they
    wanted). A session whose contact is gone, changed address or moved to another customer ends.
    Pages carry personal data: never cached, unless the view says otherwise (the live poll).
    """

    @in_portal_language
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from crm.models import Contact

        contact_id = request.session.get(SESSION_KEY)
        contact = Contact.objects.select_related("customer").filter(pk=contact_id).first() if contact_id else None
        if contact is not None and (
            contact.customer_id != request.session.get(SESSION_CUSTOMER_KEY)
            or email_fingerprint(contact.email) != request.session.get(SESSION_FINGERPRINT_KEY)
        ):
            sign_out(request)
            contact = None
        if contact is None:
            public_id = kwargs.get("public_id")
            return redirect(signed_out_url(job=public_id if isinstance(public_id, uuid.UUID) else None))
        request.contact = contact  # type: ignore[attr-defined]
        response = view(request, *args, **kwargs)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response

    return wrapper
