"""The links messages carry: signed tokens and the absolute URLs built from them. No request, no
session — the domain builds links here, and the portal reads them back here.

A contact never has a password. A sign-in link carries a token bound to that contact, to the
address it was sent to and to the contact's link version (Django's signing, so nothing is stored
and nothing can be forged without SECRET_KEY); it expires after PORTAL_LINK_MAX_AGE_DAYS. Text
messages carry the same facts in a short link of 36 characters. The calendar address never
expires but is bound the same way. A new email address or "reset my links" bumps the version
(``Contact.link_version``), which takes back every sign-in link, short link, calendar address and
portal session at once; version 0 binds exactly as links did before the version existed, so links
already sent keep working until then. Unsubscribe links never expire and are never taken back.
Survey and check-in links name one job and one contact, never expire, and open that one page only.

The salts are part of every link already sent: changing one breaks the links in customers'
mailboxes.
"""

from __future__ import annotations

import base64
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from crm.ids import parse_public_id
from crm.models import Campaign, Contact, Job, Visit

LINK_SALT = "portal.link"
CALENDAR_SALT = "portal.calendar"
UNSUBSCRIBE_SALT = "portal.unsubscribe"
SURVEY_SALT = "portal.survey"
CHECKIN_SALT = "portal.checkin"
EMAIL_FINGERPRINT_SALT = "portal.link.email"


# --- Signed tokens ------------------------------------------------------------------------------


def link_max_age() -> timedelta:
    return timedelta(days=settings.PORTAL_LINK_MAX_AGE_DAYS)


def email_fingerprint(email: str, version: int = 0) -> str:
    """Binds a link to the address it was sent to, and to the contact's link version, without
    putting either in the URL. Version 0 is the fingerprint of links made before versions existed."""
    value = email.strip().lower()
    if version:
        value = f"{value}\n{version}"  # a newline: no address contains one
    return salted_hmac(EMAIL_FINGERPRINT_SALT, value).hexdigest()[:16]


def contact_fingerprint(contact: Contact) -> str:
    """What a sign-in link, a calendar address and a portal session of ``contact`` are bound to
    now: a new address or a bumped link version ends everything bound to the old one."""
    return email_fingerprint(contact.email, contact.link_version)


def _still_bound(fingerprint: object, contact: Contact) -> bool:
    """Whether the fingerprint a verified token carries is ``contact``'s as they are now."""
    return (
        isinstance(fingerprint, str)
        and fingerprint.isascii()
        and hmac.compare_digest(fingerprint, contact_fingerprint(contact))
    )


def _contact_payload(contact: Contact) -> dict[str, Any]:
    # A link sent to an old address, or before the links were reset, stops working.
    return {"c": contact.pk, "e": contact_fingerprint(contact)}


def make_link_token(contact: Contact) -> str:
    return signing.dumps(_contact_payload(contact), salt=LINK_SALT, compress=True)


def read_link_token(token: str) -> dict[str, Any]:
    """The signed payload; raises signing.SignatureExpired or signing.BadSignature."""
    return signing.loads(token, salt=LINK_SALT, max_age=link_max_age())


def link_token_made_at(token: str) -> datetime:
    """When a sign-in token that ``read_link_token`` accepted was made: the timestamp Django's
    TimestampSigner signed into it (``value:timestamp:signature``)."""
    timestamp = token.rsplit(":", 2)[1]
    return datetime.fromtimestamp(signing.b62_decode(timestamp), tz=UTC)


def payload_contact_id(payload: dict[str, Any] | None) -> int | None:
    """The contact a verified token names (None if it names none)."""
    contact_id = (payload or {}).get("c")
    return contact_id if isinstance(contact_id, int) else None


def make_calendar_token(contact: Contact) -> str:
    # Never expires: a calendar app subscribes once and keeps fetching the same address. Bound
    # like a sign-in link, so a reset or a new address ends it (the app then fetches a 404).
    return signing.dumps(_contact_payload(contact), salt=CALENDAR_SALT, compress=True)


def read_calendar_token(token: str) -> dict[str, Any]:
    """The signed payload; raises signing.BadSignature."""
    return signing.loads(token, salt=CALENDAR_SALT)


def calendar_contact(payload: dict[str, Any] | None) -> Contact | None:
    """Whose feed a verified calendar token (what ``read_calendar_token`` returned) opens: the
    contact it names, while it is bound to them as they are now. A token made before tokens were
    bound (no "e") opens only while the contact's links were never reset (version 0; a new
    address bumps the version too)."""
    contact_id = payload_contact_id(payload)
    contact = Contact.objects.filter(pk=contact_id).first() if contact_id is not None else None
    if contact is None or payload is None:
        return None
    if "e" not in payload:
        return contact if contact.link_version == 0 else None
    return contact if _still_bound(payload["e"], contact) else None


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
# A text is a few segments of 153 characters (SMS_MAX_SEGMENTS); a signed link (JSON, timestamp,
# full signature, the job's UUID) takes about 175 of them. The short link carries the same facts
# packed in 15 bytes — the contact, the job, the day it was made and the email fingerprint (with
# the link version) — with a 96-bit HMAC (truncated SHA-256, keyed by SECRET_KEY): 36 characters.
# It expires like the long link, and a changed address or a reset ends it the same way.

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
    made_on: date  # the day it was made (UTC): all a short link knows of its age


def _short_fingerprint(contact: Contact) -> bytes:
    return bytes.fromhex(contact_fingerprint(contact)[:8])


def _short_mac(payload: bytes) -> bytes:
    return salted_hmac(SHORT_SALT, payload, algorithm="sha256").digest()[:SHORT_MAC_BYTES]


def make_short_token(contact: Contact, job: Job | None = None, *, today: date | None = None) -> str:
    day = ((today or timezone.now().date()) - SHORT_EPOCH).days
    payload = _SHORT_LAYOUT.pack(_SHORT_VERSION, contact.pk, job.pk if job else 0, day, _short_fingerprint(contact))
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
    made_on = SHORT_EPOCH + timedelta(days=day)
    age = (today or timezone.now().date()) - made_on
    if version != _SHORT_VERSION or not timedelta(0) <= age <= link_max_age():
        return None
    return ShortLink(contact_id=contact_id, job_id=job_id or None, fingerprint=fingerprint, made_on=made_on)


def short_fingerprint_matches(link: ShortLink, contact: Contact) -> bool:
    return hmac.compare_digest(link.fingerprint, _short_fingerprint(contact))


# --- Whom a sign-in link signs in ---------------------------------------------------------------


def linked_contact(link: dict[str, Any] | ShortLink | None) -> Contact | None:
    """The contact a verified sign-in link (what ``read_link_token`` or ``read_short_token``
    returned) may still sign in: one that exists, still has the address the link was sent to and
    has not had their links reset since. None for no link, a link that names nobody, or a contact
    who is gone, changed address or reset their links."""
    contact_id = link.contact_id if isinstance(link, ShortLink) else payload_contact_id(link)
    if link is None or contact_id is None:
        return None
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return None
    if isinstance(link, ShortLink):
        still_theirs = short_fingerprint_matches(link, contact)
    else:
        still_theirs = _still_bound(link.get("e"), contact)
    return contact if still_theirs else None


# --- Addresses ----------------------------------------------------------------------------------


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _sign_in_url(contact: Contact, query: dict[str, str]) -> str:
    url = reverse("portal:enter", args=[make_link_token(contact)])
    return absolute(f"{url}?{urlencode(query)}" if query else url)


def portal_url(contact: Contact, job: Job | None = None) -> str:
    """The link every message to ``contact`` carries: it signs them in and opens ``job``."""
    return _sign_in_url(contact, {"job": str(job.public_id)} if job is not None else {})


# A visit's two one-click answers, as the ``answer`` of visit_answer_url.
VISIT_ANSWERS = ("confirm", "another-time")


def visit_answer_url(contact: Contact, visit: Visit, answer: str) -> str:
    """ "That works" / "I need another time" in a message about ``visit``: a sign-in link (the same
    token, the same rules as ``portal_url``) that opens the page of that one answer, whose one
    button gives it. Opening the link answers nothing: a mail scanner following it changes
    nothing, and the customer sees the time they are answering, as it stands now."""
    if answer not in VISIT_ANSWERS:
        raise ValueError(f"Unknown visit answer {answer!r}")
    return _sign_in_url(contact, {"job": str(visit.job.public_id), "visit": str(visit.public_id), "answer": answer})


def short_portal_url(contact: Contact, job: Job | None = None) -> str:
    """The link a text message carries: signs ``contact`` in and opens ``job``, in 36 characters
    (the long link for ids past what it packs)."""
    if contact.pk >= 2**32 or (job is not None and job.pk >= 2**32):
        return portal_url(contact, job)
    return absolute(reverse("portal:short_enter", args=[make_short_token(contact, job)]))


def signed_out_url(*, job: uuid.UUID | None = None, reason: str = "") -> str:
    """Where a visitor without a usable session goes; the job they wanted travels along, so the
    fresh link they ask for opens it."""
    query = {key: value for key, value in (("job", str(job) if job else ""), ("reason", reason)) if value}
    url = reverse("portal:signed_out")
    return f"{url}?{urlencode(query)}" if query else url


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


def campaign_path(campaign: Campaign, *, language: str = "") -> str:
    """The campaign's durable page: it opens without signing in, and still says something useful
    once the campaign has ended. The language makes it open in the reader's."""
    path = reverse("portal:campaign", args=[campaign.public_id])
    return f"{path}?{urlencode({'lang': language})}" if language else path


def campaign_url(campaign: Campaign, *, language: str = "") -> str:
    return absolute(campaign_path(campaign, language=language))


# --- Calendar links: an installer's private feed, a visit's own .ics ------------------------------
#
# An installer's feed is a secret address that never expires; it names the person and the version
# of their link kept on their StaffProfile, so "make a new link" (the version bumped) ends every
# older one at once, with nothing stored per link. A visit's .ics names the contact it was sent to
# and the visit; it opens only while the visit is one of that contact's customer's.

STAFF_CALENDAR_SALT = "crm.staff-calendar"
VISIT_CALENDAR_SALT = "portal.visit-calendar"


def as_webcal(url: str) -> str:
    """The same address for "subscribe" buttons: calendar apps open webcal:// addresses themselves."""
    return "webcal://" + url.split("://", 1)[1]


def staff_calendar_version(user: User) -> int:
    """The version of ``user``'s calendar link that works now (select_related ``staff_profile``
    to save a query); a person without a profile has the first."""
    profile = getattr(user, "staff_profile", None)  # a missing one-to-one row is an AttributeError
    return profile.calendar_version if profile is not None else 1


def make_staff_calendar_token(user: User) -> str:
    return signing.dumps({"u": user.pk, "v": staff_calendar_version(user)}, salt=STAFF_CALENDAR_SALT)


def staff_calendar_user(token: str) -> User | None:
    """Whose feed a calendar link opens: an active staff member whose link it still is (not made
    before their latest "make a new link"); None for a bad, foreign or revoked token."""
    try:
        payload = signing.loads(token, salt=STAFF_CALENDAR_SALT)
    except signing.BadSignature:
        return None
    user_id, version = (payload.get("u"), payload.get("v")) if isinstance(payload, dict) else (None, None)
    if not isinstance(user_id, int) or not isinstance(version, int):
        return None
    user = (
        get_user_model()
        .objects.filter(pk=user_id, is_active=True, is_staff=True)
        .select_related("staff_profile")
        .first()
    )
    if user is None or staff_calendar_version(user) != version:
        return None
    return user


def staff_calendar_url(user: User) -> str:
    return absolute(reverse("crm:staff_calendar", args=[make_staff_calendar_token(user)]))


def staff_webcal_url(user: User) -> str:
    return as_webcal(staff_calendar_url(user))


def make_visit_calendar_token(*, contact_id: int, visit_id: uuid.UUID) -> str:
    # Never expires: the booking confirmation's link keeps giving the visit as it now is.
    return signing.dumps({"v": str(visit_id), "c": contact_id}, salt=VISIT_CALENDAR_SALT, compress=True)


def read_visit_calendar_token(token: str) -> tuple[uuid.UUID, int] | None:
    """The visit's public id and the contact a verified token names; None when it does not verify."""
    try:
        payload = signing.loads(token, salt=VISIT_CALENDAR_SALT)
    except signing.BadSignature:
        return None
    visit_id = parse_public_id(payload.get("v")) if isinstance(payload, dict) else None
    contact_id = payload_contact_id(payload) if isinstance(payload, dict) else None
    if visit_id is None or contact_id is None:
        return None
    return visit_id, contact_id


def visit_calendar_url(contact: Contact, visit: Visit) -> str:
    """The booking confirmation's "add to my calendar": ``visit`` in its window, as one .ics."""
    token = make_visit_calendar_token(contact_id=contact.pk, visit_id=visit.public_id)
    return absolute(reverse("portal:visit_calendar", args=[token]))
